/* core/ops_loss.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_loss_c;
