/* coordinator/scheduler.c: placeholder, being written. */
typedef int ig__placeholder_coordinator_scheduler_c;
