/* worker/trainer.c: placeholder, being written. */
typedef int ig__placeholder_worker_trainer_c;
