import { describe, expect, it } from 'vitest';
import { resultText } from '../../src/cli/output.js';

describe('resultText', () => {
  it('reads index and status from the head of a server line without parsing it', () => {
    const text = '{"index":41,"id":"a\\"status\\":\\"failed","status":"completed","prediction":1}';
    const result = resultText(text);
    expect([result.index, result.failed, result.text]).toEqual([41, false, text]);
    expect(result.parse()).toMatchObject({ index: 41, status: 'completed' });
  });

  it('parses a line whose fields come in another order', () => {
    const result = resultText('{"status":"failed","error":{"code":"x","message":"y"},"index":3}');
    expect([result.index, result.failed]).toEqual([3, true]);
  });

  it('counts a cancelled row as not completed', () => {
    expect(resultText('{"index":0,"status":"cancelled"}').failed).toBe(true);
  });
});
