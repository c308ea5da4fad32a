// The subcommand registry. Each command module declares its options; heavy modules load lazily in run().
import type { CommandSpec } from './command.js';

export const COMMANDS: CommandSpec<never>[] = [];
