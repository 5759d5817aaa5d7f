/* tests/testutil.h: what the tests share: random tensors, closeness checks,
 * and the finite-difference gradient check every op passes. */
#ifndef IGNIS_TESTS_TESTUTIL_H
#define IGNIS_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ignis/ignis.h"

/* A leaf of random normal values (f64 unless said), requiring grad. */
ig_tensor *tu_randn(int ndim, const int64_t *shape, ig_dtype dtype, bool requires_grad);
/* Largest |a - b| / (atol + rtol |b|) over elements (<= 1 means close). Both
 * are compared as f64 on the host; shapes must match. */
double tu_close_ratio(ig_tensor *a, ig_tensor *b, double atol, double rtol);
/* Asserts a and b are elementwise close, printing the worst element. */
void tu_assert_close(ig_tensor *a, ig_tensor *b, double atol, double rtol, const char *what);

/* The function under test: builds a result from inputs (any shape). */
typedef ig_tensor *(*tu_fn)(void *user, ig_tensor **in);

/* Checks the gradients that backward gives every input requiring grad against
 * central differences of L = sum(f(in) * w), w random. Inputs must be
 * contiguous f64 leaves. Fails the test with the op name, input and element. */
void tu_gradcheck(const char *name, tu_fn f, void *user, int n, ig_tensor **in);

/* Runs the tests with a fresh default seed each. */
#define TU_RUN(tests) cmocka_run_group_tests(tests, NULL, NULL)

#endif
