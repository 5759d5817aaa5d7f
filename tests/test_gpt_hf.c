/* tests/test_gpt_hf.c: placeholder, being written. */
int main(void) { return 77; }
