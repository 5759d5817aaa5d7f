/* coordinator/journal.c: placeholder, being written. */
typedef int ig__placeholder_coordinator_journal_c;
