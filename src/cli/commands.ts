// The subcommand registry. Each command module declares its options; heavy modules load lazily in run().
import type { CommandSpec } from './command.js';
import { translateCommand } from './cmd_translate.js';

export const COMMANDS: CommandSpec<never>[] = [translateCommand] as CommandSpec<never>[];
