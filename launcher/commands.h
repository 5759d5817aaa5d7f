/* launcher/commands.h: the `ignis` subcommands that live in files of their
 * own (ignis.c dispatches to them). Each takes the arguments after the
 * command name (argv[0] is the command) and returns the exit status: 0 done,
 * 1 failed, 2 usage error. */
#ifndef IGNIS_LAUNCHER_COMMANDS_H
#define IGNIS_LAUNCHER_COMMANDS_H

/* `ignis coordinator` (cmd_coordinator.c): the head-node daemon; its help text. */
#define COORDINATOR_HELP                                                                \
    "  coordinator       the head-node daemon: keeps the job queue and journal,\n"        \
    "                    places ranks on workers, restarts failed jobs\n"                 \
    "    --listen ADDR       the address to serve, loopback only for now\n"               \
    "                        (tcp://127.0.0.1:PORT, tcp://localhost:PORT, ipc://PATH)\n"  \
    "    --state DIR         the journal's directory: jobs survive a restart (required)\n" \
    "    --heartbeat-timeout S  fail a node silent for S seconds (default 10)\n"
int cmd_coordinator(int argc, char **argv);

/* `ignis worker` (cmd_worker.c): the node daemon; its help text. */
#define WORKER_HELP                                                                     \
    "  worker            the node daemon: registers this node's slots with a\n"         \
    "                    coordinator and runs the ranks it places here\n"               \
    "    --coordinator ADDR  the coordinator's address, e.g. tcp://head:5555 (required)\n" \
    "    --cpus N            CPU slots (default: the number of CPUs)\n"                 \
    "    --gpus all|N|LIST   GPUs: all, the first N, or indices like 0,2 (default none)\n" \
    "    --name NAME         the node's name (default: the host name)\n"                \
    "    --work-dir DIR      job specs and rank logs go to DIR/job-J/attempt-A/\n"      \
    "                        (default: the current directory)\n"                        \
    "    --rank-command CMD  what runs a rank, split on spaces; the job spec's path\n"  \
    "                        is appended (default: this ignis, 'train')\n"              \
    "    --grace SECONDS     SIGTERM to SIGKILL on abort and exit (default 5)\n"
int cmd_worker(int argc, char **argv);

#endif
