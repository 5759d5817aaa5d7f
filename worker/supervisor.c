/* worker/supervisor.c: placeholder, being written. */
typedef int ig__placeholder_worker_supervisor_c;
