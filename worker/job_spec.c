/* worker/job_spec.c: placeholder, being written. */
typedef int ig__placeholder_worker_job_spec_c;
