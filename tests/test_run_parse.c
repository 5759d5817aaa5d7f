/* tests/test_run_parse.c: what `ignis run` reads to place its workers
 * (launcher/run_parse.c): --hosts lists, Slurm's SLURM_TASKS_PER_NODE, which
 * hosts are this machine, and the shell quoting of the ssh command (checked
 * by running the quoted words through a real sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/run_workers.h"
#include "tests/testutil.h"

static run_node nodes[8];
static char err[512];

static void test_hosts_lists_give_names_and_slots_in_order(void **state) {
    (void)state;
    int n = -1;
    assert_int_equal(run_parse_hosts("h1:8,h2:8", nodes, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].name, "h1");
    assert_int_equal(nodes[0].cpus, 8);
    assert_string_equal(nodes[1].name, "h2");
    assert_int_equal(nodes[1].cpus, 8);
    assert_int_equal(
        run_parse_hosts("127.0.0.1:2,localhost:2,me@node-3.example_x:4096", nodes, 8, &n, err, sizeof err),
        -1); /* 4100 slots in all */
    assert_non_null(strstr(err, "more than 4096 slots"));
    assert_int_equal(run_parse_hosts("127.0.0.1:2,me@node-3.example_x:1", nodes, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[1].name, "me@node-3.example_x");
    assert_int_equal(nodes[1].cpus, 1);
}

static void test_hostfiles_become_hosts_lists(void **state) {
    (void)state;
    char out[256];
    const char *text = "# our nodes\n"
                       "node1 slots=8\n"
                       "\n"
                       "  node2:4   # the small one\r\n"
                       "me@node3\n"
                       "node4\tslots=2";
    assert_int_equal(run_hostfile_to_hosts(text, "hf", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "node1:8,node2:4,me@node3:1,node4:2");
    int n;
    assert_int_equal(run_parse_hosts(out, nodes, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(run_hostfile_to_hosts("# none\n\n", "hf", out, sizeof out, err, sizeof err), -1);
    assert_string_equal(err, "--hostfile hf: no hosts in it");
    assert_int_equal(run_hostfile_to_hosts("a slots=2\nb slots=x\n", "hf", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "--hostfile hf:2: expected 'HOST slots=N' or 'HOST:N'"));
    assert_non_null(strstr(err, "got 'b slots=x'"));
    assert_int_equal(run_hostfile_to_hosts("a max_slots=2\n", "hf", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(run_hostfile_to_hosts("a slots=1\nb slots=1\n", "hf", out, 7, err, sizeof err), -1);
    assert_string_equal(err, "--hostfile hf: too many hosts");
}

static void expect_hosts_error(const char *s, const char *message) {
    int n;
    assert_int_equal(run_parse_hosts(s, nodes, 3, &n, err, sizeof err), -1);
    if (!strstr(err, message)) fail_msg("'%s': '%s' does not say '%s'", s, err, message);
}

static void test_bad_hosts_lists_say_what_was_expected(void **state) {
    (void)state;
    expect_hosts_error("", "entry 1 is empty");
    expect_hosts_error("h1:2,", "entry 2 is empty");
    expect_hosts_error("h1:2,,h2:1", "entry 2 is empty");
    expect_hosts_error("h1", "'h1' has no slot count");
    expect_hosts_error("h1:", "'h1:': expected a number of slots in [1, 4096]");
    expect_hosts_error("h1:0", "expected a number of slots");
    expect_hosts_error("h1:-2", "expected a number of slots");
    expect_hosts_error("h1:2x", "expected a number of slots");
    expect_hosts_error("h1:4097", "expected a number of slots");
    expect_hosts_error(":2", "expected a host name");
    expect_hosts_error("-oProxyCommand=x:2", "expected a host name");
    expect_hosts_error("h 1:2", "expected a host name");
    expect_hosts_error("h;rm:2", "expected a host name");
    expect_hosts_error("h1:2,h1:3", "'h1' is listed twice");
    expect_hosts_error("a:1,b:1,c:1,d:1", "more than 3 hosts");
}

static void test_tasks_per_node_expands_repeats(void **state) {
    (void)state;
    int slots[8];
    assert_int_equal(run_parse_tasks_per_node("2(x3),1", slots, 4, err, sizeof err), 0);
    assert_int_equal(slots[0], 2);
    assert_int_equal(slots[1], 2);
    assert_int_equal(slots[2], 2);
    assert_int_equal(slots[3], 1);
    assert_int_equal(run_parse_tasks_per_node("4", slots, 1, err, sizeof err), 0);
    assert_int_equal(slots[0], 4);
    assert_int_equal(run_parse_tasks_per_node("1,3(x2),0", slots, 4, err, sizeof err), 0);
    assert_int_equal(slots[1], 3);
    assert_int_equal(slots[2], 3);
    assert_int_equal(slots[3], 0);
    assert_int_equal(run_parse_tasks_per_node("16(x1)", slots, 1, err, sizeof err), 0);
    assert_int_equal(slots[0], 16);
}

static void test_bad_tasks_per_node_is_named(void **state) {
    (void)state;
    int slots[8];
    static const char *const bad[] = {"",      "x",  "2(x)", "2(3)", "2(x3",   "2x3)",
                                      "2(x0)", ",1", "1,",   "-1",   "2(x3),a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(run_parse_tasks_per_node(bad[i], slots, 4, err, sizeof err), -1);
        if (!strstr(err, "SLURM_TASKS_PER_NODE=") || !strstr(err, "expected counts like 2(x3),1"))
            fail_msg("'%s': %s", bad[i], err);
    }
    assert_int_equal(run_parse_tasks_per_node("2(x3)", slots, 2, err, sizeof err), -1);
    assert_string_equal(err, "SLURM_TASKS_PER_NODE='2(x3)' gives 3 node(s), SLURM_JOB_NODELIST 2");
    assert_int_equal(run_parse_tasks_per_node("2", slots, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "gives 1 node(s)"));
}

static void test_loopback_hosts_are_this_machine(void **state) {
    (void)state;
    assert_true(run_is_loopback("127.0.0.1", "vm"));
    assert_true(run_is_loopback("127.1.2.3", "vm"));
    assert_true(run_is_loopback("root@127.0.0.1", "vm"));
    assert_true(run_is_loopback("localhost", "vm"));
    assert_true(run_is_loopback("::1", "vm"));
    assert_true(run_is_loopback("vm", "vm"));
    assert_true(run_is_loopback("node1", "node1.cluster.example"));
    assert_true(run_is_loopback("node1.cluster.example", "node1.cluster.example"));
    assert_false(run_is_loopback("node2", "node1.cluster.example"));
    assert_false(run_is_loopback("node", "node1"));
    assert_false(run_is_loopback("10.0.0.1", "vm"));
    assert_false(run_is_loopback("128.0.0.1", "vm"));
    assert_false(run_is_loopback("vm2", "vm"));
    assert_false(run_is_loopback("", "vm"));
}

/* Each word quoted, then echoed back one per line by a real sh. */
static void test_shell_quoting_survives_a_real_shell(void **state) {
    (void)state;
    static const char *const words[] = {"plain", "two words", "it's", "'", "$HOME `id` \"x\" \\n *", ""};
    char cmd[4096] = "printf '%s\\n'", q[256], line[256];
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        assert_true(run_shell_quote(words[i], q, sizeof q) > 0);
        strcat(cmd, " ");
        strcat(cmd, q);
    }
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        line[strcspn(line, "\n")] = 0;
        assert_string_equal(line, words[i]);
    }
    assert_int_equal(pclose(f), 0);
    assert_int_equal(run_shell_quote("it's", q, sizeof q), 9); /* 'it'\''s' */
    assert_int_equal(run_shell_quote("abc", q, 6), 5);         /* 'abc' and its NUL */
    assert_int_equal(run_shell_quote("abcd", q, 6), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts_lists_give_names_and_slots_in_order),
        cmocka_unit_test(test_hostfiles_become_hosts_lists),
        cmocka_unit_test(test_bad_hosts_lists_say_what_was_expected),
        cmocka_unit_test(test_tasks_per_node_expands_repeats),
        cmocka_unit_test(test_bad_tasks_per_node_is_named),
        cmocka_unit_test(test_loopback_hosts_are_this_machine),
        cmocka_unit_test(test_shell_quoting_survives_a_real_shell),
    };
    return TU_RUN(tests);
}
