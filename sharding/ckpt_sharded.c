/* sharding/ckpt_sharded.c: placeholder, being written. */
typedef int ig__placeholder_sharding_ckpt_sharded_c;
