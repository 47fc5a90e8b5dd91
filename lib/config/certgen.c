/* certgen.c - a self-signed ECDSA P-256 key and CA certificate for
 * `aemp gencert`, made in-process with GnuTLS (see certgen.h). */
#include "certgen.h"

#include "aemp.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CERTGEN_YEARS 10

/* Fill the certificate's fields: subject, serial, validity, CA extensions. */
static int fill_cert(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn)
{
    unsigned char serial[16];
    int rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive INTEGER */
    serial[0] |= 0x01; /* and never with a leading zero byte */
    time_t now = time(NULL);
    if (!rc) rc = gnutls_x509_crt_set_version(crt, 3);
    if (!rc) rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
    /* A minute of slack for peers whose clocks run a little behind. */
    if (!rc) rc = gnutls_x509_crt_set_activation_time(crt, now - 60);
    if (!rc)
        rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)CERTGEN_YEARS * 365 * 86400);
    if (!rc)
        rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                           (unsigned)strlen(cn));
    if (!rc) rc = gnutls_x509_crt_set_key(crt, key);
    if (!rc) rc = gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
    if (!rc)
        rc = gnutls_x509_crt_set_key_usage(crt,
                                           GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_DIGITAL_SIGNATURE);
    if (!rc) rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
    if (!rc) rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
    if (!rc) {
        unsigned char kid[64];
        size_t kidlen = sizeof kid;
        rc = gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen);
        if (!rc) rc = gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen);
    }
    if (!rc) rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    return rc;
}

/* Concatenate key and certificate PEM into a new string. */
static char *join_pem(const gnutls_datum_t *a, const gnutls_datum_t *b)
{
    char *s = malloc(a->size + b->size + 1);
    if (!s) return NULL;
    memcpy(s, a->data, a->size);
    memcpy(s + a->size, b->data, b->size);
    s[a->size + b->size] = 0;
    return s;
}

int certgen_selfsigned(const char *cn, char **pem, char *err, size_t errlen)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t kpem = {0}, cpem = {0};
    const char *what = "initialising";
    *pem = NULL;
    if (!cn || !*cn) cn = "AnyEvent::MP";
    int rc = gnutls_x509_privkey_init(&key);
    if (!rc) rc = gnutls_x509_crt_init(&crt);
    if (!rc) {
        what = "generating the key";
        rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    }
    if (!rc) {
        what = "making the certificate";
        rc = fill_cert(crt, key, cn);
    }
    if (!rc) {
        what = "exporting PEM";
        rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kpem);
    }
    if (!rc) rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem);
    int ret = 0;
    if (rc) {
        snprintf(err, errlen, "certificate generation failed while %s: %s", what,
                 gnutls_strerror(rc));
        ret = AEMP_EIO;
    } else if (!(*pem = join_pem(&kpem, &cpem))) {
        snprintf(err, errlen, "certificate generation: out of memory");
        ret = AEMP_ENOMEM;
    }
    gnutls_free(kpem.data);
    gnutls_free(cpem.data);
    if (crt) gnutls_x509_crt_deinit(crt);
    if (key) gnutls_x509_privkey_deinit(key);
    return ret;
}
