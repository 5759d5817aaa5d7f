/* launcher/commands.h: the `ignis` subcommands that live in files of their
 * own (ignis.c dispatches to them). Each takes the arguments after the
 * command name (argv[0] is the command) and returns the exit status: 0 done,
 * 1 failed, 2 usage error. */
#ifndef IGNIS_LAUNCHER_COMMANDS_H
#define IGNIS_LAUNCHER_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "ignis/proto.h"

/* Shared by every command (cmd_common.c): "ignis CMD: <message>; see 'ignis
 * help CMD'" on stderr, returning 2; and a whole decimal integer in
 * [lo, hi] (false when s is anything else). */
int cmd_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool cmd_parse_int(const char *s, long long lo, long long hi, long long *out);

/* `ignis coordinator` (cmd_coordinator.c): the head-node daemon; its help text. */
#define COORDINATOR_HELP                                                                \
    "  coordinator       the head-node daemon: keeps the job queue and journal,\n"        \
    "                    places ranks on workers, restarts failed jobs\n"                 \
    "    --listen ADDR       the address to serve: any with --key, else loopback only\n" \
    "                        (tcp://127.0.0.1:PORT, tcp://localhost:PORT, ipc://PATH)\n"  \
    "    --state DIR         the journal's directory: jobs survive a restart (required)\n" \
    "    --key FILE          this coordinator's key pair (ignis keygen): CurveZMQ,\n"   \
    "                        encrypted, only authorized client keys let in\n"          \
    "    --authorized-keys FILE  the client public keys let in, one per line ('#'\n"   \
    "                        comments); re-read when it changes (needs --key)\n"       \
    "    --heartbeat-timeout S  fail a node silent for S seconds (default 10)\n"
int cmd_coordinator(int argc, char **argv);

/* `ignis keygen` (cmd_keygen.c): a CurveZMQ key pair; its help text. */
#define KEYGEN_HELP                                                                     \
    "  keygen FILE       a CurveZMQ key pair for the control plane: FILE (secret,\n"  \
    "                    mode 0600, for --key or IGNIS_KEY) and FILE.pub (the public\n" \
    "                    key, for --authorized-keys or IGNIS_COORDINATOR_KEY)\n"      \
    "    --force             overwrite FILE and FILE.pub if they exist\n"
int cmd_keygen(int argc, char **argv);

/* `ignis worker` (cmd_worker.c): the node daemon; its help text. */
#define WORKER_HELP                                                                     \
    "  worker            the node daemon: registers this node's slots with a\n"         \
    "                    coordinator and runs the ranks it places here\n"               \
    "    --coordinator ADDR  the coordinator's address, e.g. tcp://head:5555 (required)\n" \
    "    --cpus N            CPU slots (default: the number of CPUs)\n"                 \
    "    --gpus all|N|LIST   GPUs: all, the first N, or indices like 0,2 (default none);\n" \
    "                        they are then the slots, a CUDA rank on its slot's GPU\n"  \
    "    --name NAME         the node's name (default: the host name)\n"                \
    "    --work-dir DIR      job specs and rank logs go to DIR/job-J/attempt-A/\n"      \
    "                        (default: the current directory)\n"                        \
    "    --rank-command CMD  what runs a rank, split on spaces; the job spec's path\n"  \
    "                        is appended (default: this ignis, 'train')\n"              \
    "    --grace SECONDS     SIGTERM to SIGKILL on abort and exit (default 5)\n"           \
    "    --stop-on-eof       stop as on SIGTERM when stdin ends (how `ignis run\n"       \
    "                        --hosts` stops the workers it starts over ssh)\n"           \
    "    --key FILE          this worker's key pair (CurveZMQ; its ranks use it too)\n" \
    "    --coordinator-key KEY  the coordinator's public key: Z85 text or its .pub\n"  \
    "                        file (with --key; default: $IGNIS_KEY and\n"             \
    "                        $IGNIS_COORDINATOR_KEY)\n"
int cmd_worker(int argc, char **argv);

/* `ignis submit`, `ignis status`, `ignis cancel` (cmd_client.c): requests to a
 * coordinator, each answered within CLIENT_TIMEOUT_MS; their help texts. */
#define SUBMIT_HELP                                                                     \
    "  submit JOB        send a job spec (JSON) to the coordinator's queue\n"           \
    "    --coordinator ADDR  default: $IGNIS_COORDINATOR, else " CLIENT_DEFAULT_COORDINATOR "\n" \
    "    --ranks N           ranks to run (default: the spec's run.ranks, else 1)\n"   \
    "    --min-ranks N       the fewest ranks it may run on (default: run.min_ranks)\n" \
    "    --max-ranks N       the most ranks it may run on (default: run.max_ranks)\n"  \
    "    --max-restarts N    new attempts after a failure (default: run.max_restarts,\n" \
    "                        else 3)\n"                                              \
    "    --strategy NAME     ddp (default: run.strategy; fsdp is to come)\n"        \
    "    (a CurveZMQ coordinator: IGNIS_KEY=this client's key pair file and\n"         \
    "     IGNIS_COORDINATOR_KEY=its public key or .pub file, for every client)\n"
#define STATUS_HELP                                                                     \
    "  status [JOB]      one line per job (state, attempt, ranks, step, loss, speed)\n"\
    "    --json              the coordinator's STATUS_REPLY as JSON\n"                  \
    "    --coordinator ADDR  as for submit\n"
#define CANCEL_HELP                                                                     \
    "  cancel JOB        stop a queued or running job (its ranks are aborted)\n"       \
    "    --coordinator ADDR  as for submit\n"
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_cancel(int argc, char **argv);

/* `ignis logs JOB` (cmd_logs.c): the job's rank output as the coordinator
 * collected it; its help text. */
#define LOGS_HELP                                                                       \
    "  logs JOB          the output of a job's ranks (stdout and stderr), as the\n"     \
    "                    coordinator collected it from the workers\n"                  \
    "    --rank R            rank R's output as it wrote it (default: every rank's\n"   \
    "                        lines, each prefixed \"[rank R] \")\n"                     \
    "    --attempt A         attempt A (default: the latest that started)\n"           \
    "    --follow            keep printing new output until the job ends\n"            \
    "    --coordinator ADDR  as for submit\n"
int cmd_logs(int argc, char **argv);

/* `ignis run` (cmd_run.c): a coordinator and workers (here, over ssh, or
 * with srun) as child processes, the job submitted and followed to its end. */
#define RUN_HELP                                                                        \
    "  run (--local N | --hosts H:N,... | --slurm) JOB\n"                              \
    "                    start a coordinator and workers, run JOB on all their\n"     \
    "                    slots, print rank 0's output and the job's state, exit\n"   \
    "                    with its result\n"                                           \
    "    --local N           one worker here with N CPU slots\n"                      \
    "    --hosts H1:N1,...   one worker per host over ssh ($IGNIS_SSH, default ssh;\n" \
    "                        same ignis path and directory everywhere), N CPU slots\n" \
    "                        each; hosts other than this machine get CurveZMQ keys\n" \
    "    --hostfile FILE     the same with hosts from FILE: lines HOST slots=N, HOST:N\n" \
    "                        or HOST (1 slot); '#' comments\n"                        \
    "    --slurm             inside salloc/sbatch: one worker per node with srun, the\n" \
    "                        allocation's tasks as slots (SLURM_TASKS_PER_NODE)\n"    \
    "    --coordinator-host NAME  how other hosts reach this one (default: host name)\n" \
    "    --max-restarts N    new attempts after a failure (default: the spec's\n"   \
    "                        run.max_restarts, else 3)\n"                            \
    "    --state DIR         the journal, worker and rank logs (default: a temporary\n" \
    "                        directory, removed when the job succeeds)\n"
int cmd_run(int argc, char **argv);

/* Shared by the client commands and `ignis run` (cmd_client.c). */
#define CLIENT_DEFAULT_COORDINATOR "tcp://127.0.0.1:7070"
#define CLIENT_TIMEOUT_MS 5000
/* given, else $IGNIS_COORDINATOR, else CLIENT_DEFAULT_COORDINATOR. */
const char *client_address(const char *given);
/* One request and its answer of type want (*reply, owned), within timeout_ms
 * for the send and again for the answer: 0, or 1 with the reason printed
 * ("ignis: no answer from the coordinator at ADDR ...", an ERROR's message). */
int client_request(const char *addr, ig_msg_type type, const json_t *body, ig_msg_type want,
                   int timeout_ms, json_t **reply);
/* Loads and validates a spec file, then reads it as JSON with its input paths
 * made absolute and its name set: 0, or 2 with the message printed. */
int client_load_spec(const char *path, json_t **spec);
/* "job 7  running  attempt 2 (reason)  4 ranks  step 120  loss 3.41" and a
 * newline, for one STATUS_REPLY entry (missing fields left out). */
void client_print_job(FILE *f, const json_t *job);

#endif
