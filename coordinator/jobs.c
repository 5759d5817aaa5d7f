/* coordinator/jobs.c: placeholder, being written. */
typedef int ig__placeholder_coordinator_jobs_c;
