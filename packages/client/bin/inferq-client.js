#!/usr/bin/env node
// `inferq-client predict|batch|results ...`: the producer commands of inferq.
import '../dist/cli/client-main.js';
