import { describe, expect, it } from 'vitest';
import { resultHead, resultText } from '../../src/cli/output.js';

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

describe('resultHead', () => {
  const lines = [
    '{"index":41,"id":"a\\"status\\":\\"failed","status":"completed","prediction":1}',
    '{"index":0,"status":"cancelled"}',
    '{"index":7,"id":"é漢","status":"failed","error":{"code":"x","message":"y"}}',
    '{"index":123456789,"status":"completed","value":[1.5]}',
  ];

  it('reads from the bytes of server lines what resultText reads from their text', () => {
    const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    let start = 0;
    for (const line of lines) {
      const end = bytes.indexOf(0x0a, start);
      const { index, failed } = resultText(line);
      expect(resultHead(bytes, start, end)).toEqual({ index, failed });
      start = end + 1;
    }
  });

  it('gives undefined for a line of another shape (read as text instead)', () => {
    for (const line of ['{"status":"failed","index":3}', '{"index":x,"status":"completed"}', '']) {
      const bytes = Buffer.from(line);
      expect(resultHead(bytes, 0, bytes.length)).toBeUndefined();
    }
  });
});
