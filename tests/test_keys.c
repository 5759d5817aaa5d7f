/* tests/test_keys.c: the CurveZMQ key files of the control plane
 * (coordinator/keys.c): a generated pair survives a save and a load; the
 * pair file is 0600 and FILE.pub holds the public key; nothing is
 * overwritten without asking; a pair file readable by others, a corrupt one,
 * one whose public key is not its secret key's, or keys that are no Z85 are
 * refused with a message naming the file and the field. Real files in a
 * temporary directory. Skipped (77) in a build without ZeroMQ. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis/proto.h"
#include "tests/testutil.h"

#ifdef IG_HAVE_ZMQ
static char dir[64], path[128], pub[160];

static int make_dir(void **state) {
    snprintf(dir, sizeof dir, "/tmp/ignis-keys-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof path, "%s/key", dir);
    snprintf(pub, sizeof pub, "%s/key.pub", dir);
    return 0;
}

static int remove_dir(void **state) {
    unlink(path);
    unlink(pub);
    return rmdir(dir);
}

static void write_file(const char *p, const char *text, mode_t mode) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
}

/* A failing load of path: this status, one line naming the file and frag. */
static void expect_load_error(ig_status want, const char *frag) {
    ig_proto_keypair kp;
    ig_status st = ig_proto_keypair_load(path, &kp);
    const char *msg = ig_last_error();
    if (st != want || !strstr(msg, path) || !strstr(msg, frag) || strchr(msg, '\n'))
        fail_msg("load gave %s \"%s\", wanted %s naming %s and \"%s\"", ig_status_name(st), msg,
                 ig_status_name(want), path, frag);
}

static void test_a_generated_pair_round_trips_through_its_files(void **state) {
    ig_proto_keypair kp, back;
    assert_int_equal(ig_proto_keypair_generate(&kp), IG_OK);
    assert_true(ig_proto_key_is_z85(kp.public_key) && ig_proto_key_is_z85(kp.secret_key));
    assert_int_equal(ig_proto_keypair_save(path, &kp, false), IG_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(ig_proto_keypair_load(path, &back), IG_OK);
    assert_string_equal(back.public_key, kp.public_key);
    assert_string_equal(back.secret_key, kp.secret_key);
    char key[IG_PROTO_KEY_LEN + 1];
    assert_int_equal(ig_proto_public_key(pub, "test", key), IG_OK); /* the .pub file */
    assert_string_equal(key, kp.public_key);
    assert_int_equal(ig_proto_public_key(kp.public_key, "test", key), IG_OK); /* the Z85 text */
    assert_string_equal(key, kp.public_key);
    char pattern[96];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s/*", dir);
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 2); /* key, key.pub: no temporary file left */
    globfree(&g);
}

static void test_nothing_is_overwritten_without_asking(void **state) {
    ig_proto_keypair a, b, back;
    assert_int_equal(ig_proto_keypair_generate(&a), IG_OK);
    assert_int_equal(ig_proto_keypair_generate(&b), IG_OK);
    assert_int_equal(ig_proto_keypair_save(path, &a, false), IG_OK);
    assert_int_equal(ig_proto_keypair_save(path, &b, false), IG_ERR_STATE);
    assert_non_null(strstr(ig_last_error(), "exists already"));
    assert_int_equal(ig_proto_keypair_load(path, &back), IG_OK);
    assert_string_equal(back.public_key, a.public_key);
    unlink(path); /* only the .pub is left: still refused, nothing written */
    assert_int_equal(ig_proto_keypair_save(path, &b, false), IG_ERR_STATE);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(ig_proto_keypair_save(path, &b, true), IG_OK);
    assert_int_equal(ig_proto_keypair_load(path, &back), IG_OK);
    assert_string_equal(back.public_key, b.public_key);
}

static void test_a_pair_file_readable_by_others_is_refused(void **state) {
    ig_proto_keypair kp;
    assert_int_equal(ig_proto_keypair_generate(&kp), IG_OK);
    assert_int_equal(ig_proto_keypair_save(path, &kp, false), IG_OK);
    const mode_t too_open[] = {0604, 0640, 0644}; /* readable by others, by the group, by both */
    for (size_t i = 0; i < sizeof too_open / sizeof *too_open; i++) {
        assert_int_equal(chmod(path, too_open[i]), 0);
        expect_load_error(IG_ERR_INVALID, "too open");
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(ig_proto_keypair_load(path, &kp), IG_OK);
    unlink(path);
    expect_load_error(IG_ERR_IO, "No such file");
}

static void test_a_corrupt_pair_file_names_what_is_wrong(void **state) {
    ig_proto_keypair kp;
    assert_int_equal(ig_proto_keypair_generate(&kp), IG_OK);
    char text[256];
    write_file(path, "{\"public\": ", 0600);
    expect_load_error(IG_ERR_FORMAT, "line 1");
    write_file(path, "[]", 0600);
    expect_load_error(IG_ERR_FORMAT, "JSON object");
    snprintf(text, sizeof text, "{\"public\": \"%s\"}", kp.public_key);
    write_file(path, text, 0600);
    expect_load_error(IG_ERR_FORMAT, "field 'secret'");
    snprintf(text, sizeof text, "{\"public\": \"%.39s\", \"secret\": \"%s\"}", kp.public_key, kp.secret_key);
    write_file(path, text, 0600);
    expect_load_error(IG_ERR_FORMAT, "field 'public': expected a 40-character Z85");
    snprintf(text, sizeof text, "{\"public\": \"%s\", \"secret\": 7}", kp.public_key);
    write_file(path, text, 0600);
    expect_load_error(IG_ERR_FORMAT, "field 'secret'");
}

static void test_a_public_key_that_is_not_the_secret_keys_is_refused(void **state) {
    ig_proto_keypair a, b;
    assert_int_equal(ig_proto_keypair_generate(&a), IG_OK);
    assert_int_equal(ig_proto_keypair_generate(&b), IG_OK);
    char text[256];
    snprintf(text, sizeof text, "{\"public\": \"%s\", \"secret\": \"%s\"}", b.public_key, a.secret_key);
    write_file(path, text, 0600);
    expect_load_error(IG_ERR_FORMAT, "field 'public' is not the public key of field 'secret'");
}

static void test_keys_that_are_no_z85_are_refused(void **state) {
    ig_proto_keypair kp;
    assert_int_equal(ig_proto_keypair_generate(&kp), IG_OK);
    char bad[IG_PROTO_KEY_LEN + 1], text[256], key[IG_PROTO_KEY_LEN + 1];
    memcpy(bad, kp.public_key, sizeof bad);
    bad[7] = '~'; /* not in the Z85 alphabet */
    assert_false(ig_proto_key_is_z85(bad));
    assert_false(ig_proto_key_is_z85("short"));
    assert_false(ig_proto_key_is_z85(NULL));
    snprintf(text, sizeof text, "{\"public\": \"%s\", \"secret\": \"%s\"}", bad, kp.secret_key);
    write_file(path, text, 0600);
    expect_load_error(IG_ERR_FORMAT, "field 'public'");
    /* a public key given on the command line or in the environment */
    assert_int_equal(ig_proto_public_key(bad, "IGNIS_COORDINATOR_KEY", key), IG_ERR_IO);
    assert_non_null(strstr(ig_last_error(), "IGNIS_COORDINATOR_KEY="));
    assert_non_null(strstr(ig_last_error(), "neither a 40-character Z85 key nor a readable file"));
    write_file(pub, "not a key\n", 0644);
    assert_int_equal(ig_proto_public_key(pub, "--coordinator-key", key), IG_ERR_FORMAT);
    assert_non_null(strstr(ig_last_error(), "--coordinator-key="));
    assert_non_null(strstr(ig_last_error(), pub));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_generated_pair_round_trips_through_its_files, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_nothing_is_overwritten_without_asking, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_a_pair_file_readable_by_others_is_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_a_corrupt_pair_file_names_what_is_wrong, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_a_public_key_that_is_not_the_secret_keys_is_refused, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_keys_that_are_no_z85_are_refused, make_dir, remove_dir),
    };
    return TU_RUN(tests);
}
#else
int main(void) { return 77; } /* no ZeroMQ in this build */
#endif
