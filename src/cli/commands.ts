// The subcommand registry. Each command module declares its options; heavy modules load lazily in run().
import type { CommandSpec } from './command.js';
import { demoCommand } from './cmd_demo.js';
import { benchCommand, evaluateCommand, studyCommand, synthCommand } from './cmd_misc.js';
import { trainCommand } from './cmd_train.js';
import { translateCommand } from './cmd_translate.js';
import { serveCommand } from './cmd_serve.js';
import { waemCommand } from './cmd_waem.js';
import { tuneCommand } from './cmd_tune.js';

export const COMMANDS = [demoCommand, synthCommand, trainCommand, translateCommand, evaluateCommand, studyCommand, benchCommand, serveCommand, waemCommand, tuneCommand] as CommandSpec<never>[];
