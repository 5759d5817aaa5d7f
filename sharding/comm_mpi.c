/* sharding/comm_mpi.c: placeholder, being written. */
typedef int ig__placeholder_sharding_comm_mpi_c;
