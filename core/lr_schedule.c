/* core/lr_schedule.c: placeholder, being written. */
typedef int ig__placeholder_core_lr_schedule_c;
