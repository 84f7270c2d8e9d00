/* TLS material for ferryd: the operator's certificate and key, or a self-signed pair made on
 * first start (ECDSA P-256, valid for localhost, 127.0.0.1, ::1 and the host name) and kept in
 * the state folder so that peers can pin it. The fingerprint is logged at every start. */
#include "web/web.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PEM_MAX (64u << 10)

static int
tls_gnutls_error(int gnutls_rc, const char *what)
{
	return ferry_error_set(FERRY_ERR_TLS, "%s: %s", what, gnutls_strerror(gnutls_rc));
}

static int tls_add_san(gnutls_x509_crt_t certificate, const char *name);

static int
tls_add_sans(gnutls_x509_crt_t certificate, const char *const *sans)
{
	int g = 0;

	for (int i = 0; sans && sans[i] && g >= 0; i++)
		g = tls_add_san(certificate, sans[i]);
	return g;
}

/* Adds one --tls-san name: an IP address when it parses as one, else a DNS name. */
static int
tls_add_san(gnutls_x509_crt_t certificate, const char *name)
{
	unsigned char address[16];

	if (inet_pton(AF_INET, name, address) == 1)
		return gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_IPADDRESS,
							    address, 4, GNUTLS_FSAN_APPEND);
	if (inet_pton(AF_INET6, name, address) == 1)
		return gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_IPADDRESS,
							    address, 16, GNUTLS_FSAN_APPEND);
	return gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_DNSNAME, name,
						    (unsigned)strlen(name), GNUTLS_FSAN_APPEND);
}

static int
tls_create_self_signed(const char *certificate_path, const char *key_path, const char *const *sans)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t certificate = NULL;
	gnutls_datum_t key_pem = {NULL, 0}, certificate_pem = {NULL, 0};
	unsigned char serial[16], localhost_v4[4], localhost_v6[16];
	char hostname[256] = "localhost", fqdn[256] = "";
	struct addrinfo hints = {.ai_flags = AI_CANONNAME}, *found = NULL;
	time_t now = time(NULL);
	int rc, g;

	if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
	    (g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
					      0)) < 0) {
		rc = tls_gnutls_error(g, "generating the TLS key");
		goto out;
	}
	gethostname(hostname, sizeof(hostname) - 1);
	/* The host's full name too, as clients of another datacenter will call it. */
	if (getaddrinfo(hostname, NULL, &hints, &found) == 0 && found && found->ai_canonname &&
	    strcmp(found->ai_canonname, hostname) != 0)
		snprintf(fqdn, sizeof(fqdn), "%s", found->ai_canonname);
	if (found)
		freeaddrinfo(found);
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f; /* a positive serial number */
	inet_pton(AF_INET, "127.0.0.1", localhost_v4);
	inet_pton(AF_INET6, "::1", localhost_v6);
	if ((g = gnutls_x509_crt_init(&certificate)) < 0 ||
	    (g = gnutls_x509_crt_set_version(certificate, 3)) < 0 ||
	    (g = gnutls_x509_crt_set_serial(certificate, serial, sizeof(serial))) < 0 ||
	    (g = gnutls_x509_crt_set_activation_time(certificate, now - 3600)) < 0 ||
	    /* Two years at most; it is renewed by removing it (a new one at the next start). */
	    (g = gnutls_x509_crt_set_expiration_time(certificate, now + 730L * 86400)) < 0 ||
	    (g = gnutls_x509_crt_set_dn_by_oid(certificate, GNUTLS_OID_X520_COMMON_NAME, 0,
					       "ferryd", 6)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_DNSNAME, "localhost",
						      9, GNUTLS_FSAN_APPEND)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_DNSNAME, hostname,
						      (unsigned)strlen(hostname),
						      GNUTLS_FSAN_APPEND)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_IPADDRESS,
						      localhost_v4, 4, GNUTLS_FSAN_APPEND)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_IPADDRESS,
						      localhost_v6, 16, GNUTLS_FSAN_APPEND)) < 0 ||
	    (fqdn[0] && (g = gnutls_x509_crt_set_subject_alt_name(certificate, GNUTLS_SAN_DNSNAME,
								  fqdn, (unsigned)strlen(fqdn),
								  GNUTLS_FSAN_APPEND)) < 0) ||
	    /* A server's certificate, not a CA: its key can vouch for nothing else. */
	    (g = gnutls_x509_crt_set_basic_constraints(certificate, 0, -1)) < 0 ||
	    (g = gnutls_x509_crt_set_key_usage(certificate, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (g = gnutls_x509_crt_set_key_purpose_oid(certificate, GNUTLS_KP_TLS_WWW_SERVER, 0)) <
		    0 ||
	    (g = tls_add_sans(certificate, sans)) < 0 ||
	    (g = gnutls_x509_crt_set_key(certificate, key)) < 0 ||
	    (g = gnutls_x509_crt_sign2(certificate, certificate, key, GNUTLS_DIG_SHA256, 0)) < 0) {
		rc = tls_gnutls_error(g, "making the self-signed certificate");
		goto out;
	}
	if ((g = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem)) < 0 ||
	    (g = gnutls_x509_crt_export2(certificate, GNUTLS_X509_FMT_PEM, &certificate_pem)) < 0) {
		rc = tls_gnutls_error(g, "exporting the TLS pair");
		goto out;
	}
	rc = util_write_file_atomic(key_path, key_pem.data, key_pem.size, 0600);
	if (rc == 0)
		rc = util_write_file_atomic(certificate_path, certificate_pem.data,
					    certificate_pem.size, 0644);
	if (rc == 0)
		log_info("created a self-signed TLS certificate %s (key %s)", certificate_path,
			 key_path);
out:
	gnutls_free(key_pem.data);
	gnutls_free(certificate_pem.data);
	gnutls_x509_crt_deinit(certificate);
	gnutls_x509_privkey_deinit(key);
	return rc;
}

static int
tls_log_fingerprint(const char *certificate_path, const char *pem)
{
	gnutls_x509_crt_t certificate = NULL;
	gnutls_datum_t data = {(unsigned char *)(uintptr_t)pem, (unsigned)strlen(pem)};
	unsigned char fingerprint[32];
	size_t size = sizeof(fingerprint);
	char text[32 * 3 + 1];
	int g, rc = 0;

	if ((g = gnutls_x509_crt_init(&certificate)) < 0 ||
	    (g = gnutls_x509_crt_import(certificate, &data, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (g = gnutls_x509_crt_get_fingerprint(certificate, GNUTLS_DIG_SHA256, fingerprint,
						 &size)) < 0) {
		rc = ferry_error_set(FERRY_ERR_TLS,
				     "TLS certificate %s is not a PEM certificate: %s",
				     certificate_path, gnutls_strerror(g));
		goto out;
	}
	for (size_t i = 0; i < size; i++)
		snprintf(text + 3 * i, 4, "%02X%s", fingerprint[i], i + 1 < size ? ":" : "");
	log_info("TLS certificate %s, SHA-256 fingerprint %s", certificate_path, text);
out:
	gnutls_x509_crt_deinit(certificate);
	return rc;
}

int
web_tls_load(const char *state_dir, const char *certificate_path, const char *key_path,
	     const char *const *sans, char **certificate_pem, char **key_pem)
{
	char default_certificate[4096], default_key[4096], folder[4096];
	struct stat info;
	int rc;

	if ((certificate_path == NULL) != (key_path == NULL))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "give both --tls-cert and --tls-key, or neither (then a "
				       "self-signed pair is kept in %s/tls)",
				       state_dir);
	if (certificate_path == NULL) {
		rc = util_format(folder, sizeof(folder), "the TLS folder", "%s/tls", state_dir);
		if (rc == 0)
			rc = util_format(default_certificate, sizeof(default_certificate),
					 "the path of the certificate", "%s/cert.pem", folder);
		if (rc == 0)
			rc = util_format(default_key, sizeof(default_key), "the path of the key",
					 "%s/key.pem", folder);
		certificate_path = default_certificate;
		key_path = default_key;
		if (rc == 0)
			rc = util_mkdir_p(folder, 0700);
		if (rc < 0)
			return rc;
		if (stat(certificate_path, &info) < 0 || stat(key_path, &info) < 0) {
			rc = tls_create_self_signed(certificate_path, key_path, sans);
			if (rc < 0)
				return rc;
		}
	}
	rc = util_read_file(certificate_path, PEM_MAX, certificate_pem, NULL);
	if (rc < 0)
		return ferry_error_set(rc, "TLS certificate: %s", ferry_error_message());
	rc = util_read_file(key_path, PEM_MAX, key_pem, NULL);
	if (rc < 0) {
		free(*certificate_pem);
		*certificate_pem = NULL;
		return ferry_error_set(rc, "TLS key: %s", ferry_error_message());
	}
	rc = tls_log_fingerprint(certificate_path, *certificate_pem);
	if (rc < 0) {
		free(*certificate_pem);
		free(*key_pem);
		*certificate_pem = *key_pem = NULL;
	}
	return rc;
}

int
web_tls_pair_check(const char *certificate_path, const char *key_path)
{
	gnutls_certificate_credentials_t credentials = NULL;
	char *certificate_pem = NULL, *key_pem = NULL;
	gnutls_datum_t certificate, key;
	int g, rc;

	rc = util_read_file(certificate_path, PEM_MAX, &certificate_pem, NULL);
	if (rc < 0) {
		rc = ferry_error_set(rc, "TLS certificate: %s", ferry_error_message());
		goto out;
	}
	rc = util_read_file(key_path, PEM_MAX, &key_pem, NULL);
	if (rc < 0) {
		rc = ferry_error_set(rc, "TLS key: %s", ferry_error_message());
		goto out;
	}
	certificate = (gnutls_datum_t){(unsigned char *)certificate_pem,
				       (unsigned)strlen(certificate_pem)};
	key = (gnutls_datum_t){(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
	if ((g = gnutls_certificate_allocate_credentials(&credentials)) < 0 ||
	    (g = gnutls_certificate_set_x509_key_mem(credentials, &certificate, &key,
						     GNUTLS_X509_FMT_PEM)) < 0)
		rc = ferry_error_set(FERRY_ERR_TLS,
				     "TLS pair %s and %s: %s (give the key of this certificate, "
				     "both in PEM)",
				     certificate_path, key_path, gnutls_strerror(g));
out:
	if (credentials)
		gnutls_certificate_free_credentials(credentials);
	free(certificate_pem);
	free(key_pem);
	return rc;
}
