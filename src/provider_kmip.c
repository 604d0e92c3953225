/*-------------------------------------------------------------------------
 *
 * provider_kmip.c
 *	  The kmip key provider: an enterprise KMS wraps the root key over
 *	  KMIP 1.4 with TLS.
 *
 * The provider names the server (host, port), the CA that signed its
 * certificate and, for mutual TLS, a client certificate and key; the
 * ledger names the key by its KMIP Unique Identifier.  Each use asks the
 * server for the key's State (Get Attributes), refuses a key that is not
 * Active, then runs Encrypt or Decrypt with AES in GCM mode, a random
 * 96-bit IV, a 16-byte tag and the node's encryption context as the
 * authenticated additional data.  The wrapped bytes are IV || ciphertext
 * || tag, as with pkcs11.
 *
 * Debian has no C KMIP library: kmip.c holds the TTLV subset, and this
 * file the TLS conversation, which runs in a child (provider_call.c) so
 * that a server that does not answer is given up on at the timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kmip.h"

#define KMIP_HINT "Check that the KMIP server is reachable, that its certificate is signed by ca_file, that the client certificate is accepted, and that the key is Active."
#define DEFAULT_PORT 5696

static const LedgerProviderOption kmip_options[] = {
	{"host", 's', true},
	{"port", 'p', false},
	{"ca_file", 's', true},
	{"cert_file", 's', false},
	{"key_file", 's', false},
	{"timeout_ms", 'p', false},
	{NULL}
};

typedef struct KmipArgs
{
	const char *host;
	int			port;
	const char *ca_file;
	const char *cert_file;
	char	   *client_key;		/* PEM, read by the parent; NULL: no client cert */
	int			client_key_len;
	LedgerGcmOp *op;
} KmipArgs;

static const char *const state_names[] = {
	"unknown", "Pre-Active", "Active", "Deactivated", "Compromised", "Destroyed",
	"Destroyed Compromised"
};

/* In the child: what OpenSSL said last, on stderr. */
static int
tls_fail(const char *what, int code)
{
	char		buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	fprintf(stderr, "%s: %s\n", what, buf);
	return code;
}

static int
connect_tcp(const char *host, int port)
{
	struct addrinfo hints = {0},
			   *res;
	char		service[16];
	int			fd = -1;

	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		{
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* An encrypted client key is refused, never asked for on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* In the child: a verified TLS connection to the server, or NULL. */
static SSL *
tls_connect(KmipArgs *a, int *code)
{
	SSL_CTX    *ctx = SSL_CTX_new(TLS_client_method());
	SSL		   *ssl;
	X509_VERIFY_PARAM *param;
	int			fd;
	struct in6_addr ip;

	*code = 1;
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
		SSL_CTX_load_verify_locations(ctx, a->ca_file, NULL) != 1)
		return (tls_fail("loading ca_file", 1), NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (a->cert_file != NULL)
	{
		BIO		   *bio = BIO_new_mem_buf(a->client_key, a->client_key_len);
		EVP_PKEY   *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);

		BIO_free(bio);
		if (SSL_CTX_use_certificate_chain_file(ctx, a->cert_file) != 1 || pkey == NULL ||
			SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
			return (tls_fail("loading the client certificate and key", 1), NULL);
		EVP_PKEY_free(pkey);
	}
	if ((fd = connect_tcp(a->host, a->port)) < 0)
	{
		fprintf(stderr, "could not connect to %s port %d: %s\n", a->host, a->port, strerror(errno));
		return NULL;
	}
	ssl = SSL_new(ctx);
	param = SSL_get0_param(ssl);
	if (inet_pton(AF_INET, a->host, &ip) == 1 || inet_pton(AF_INET6, a->host, &ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(param, a->host);
	else
	{
		X509_VERIFY_PARAM_set1_host(param, a->host, 0);
		SSL_set_tlsext_host_name(ssl, a->host);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		return (tls_fail("TLS handshake with the KMIP server", 1), NULL);
	return ssl;
}

/* In the child: send one request and read the response into m. */
static bool
exchange(SSL *ssl, KmipWriter *w, uint8 *buf, KmipMessage *m)
{
	size_t		len;
	size_t		got = 0;

	if (w->overflow || SSL_write(ssl, w->buf, w->len) != (int) w->len)
		return false;
	while (got < KMIP_HEADER_LEN)
	{
		int			n = SSL_read(ssl, buf + got, KMIP_HEADER_LEN - got);

		if (n <= 0)
			return false;
		got += n;
	}
	if ((len = kmip_message_length(buf)) == 0)
		return false;
	while (got < len)
	{
		int			n = SSL_read(ssl, buf + got, len - got);

		if (n <= 0)
			return false;
		got += n;
	}
	return kmip_parse(buf, len, m);
}

/* In the child: the exit code for a failed operation, its reason on stderr. */
static int
result_failure(const char *what, const KmipMessage *m, uint32_t reason, int message)
{
	fprintf(stderr, "%s: result reason %u%s%.*s\n", what, reason,
			message >= 0 ? ": " : "",
			message >= 0 ? (int) Min(m->items[message].len, 200) : 0,
			message >= 0 ? (const char *) m->items[message].value : "");
	switch (reason)
	{
		case 0x01:				/* Item Not Found */
			return 3;
		case 0x03:				/* Authentication Not Successful */
		case 0x0C:				/* Permission Denied */
			return 4;
		case 0x0A:				/* Cryptographic Failure */
			return 5;
		case 0x12:				/* Wrong Key Lifecycle State */
			return 2;
		default:
			return 1;
	}
}

/* In the child: the key must exist and be Active. */
static int
check_state(SSL *ssl, KmipArgs *a, uint8 *buf, KmipMessage *m)
{
	uint8		req[1024];
	KmipWriter	w;
	uint32_t	status,
				reason,
				state;
	int			message;
	int			payload;

	kmip_writer_init(&w, req, sizeof(req));
	kmip_request_begin(&w, KMIP_OP_GET_ATTRIBUTES);
	kmip_string(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TEXT_STRING, a->op->key, strlen(a->op->key));
	kmip_string(&w, KMIP_TAG_ATTRIBUTE_NAME, KMIP_TEXT_STRING, "State", 5);
	kmip_request_end(&w);
	if (!exchange(ssl, &w, buf, m))
		return (fprintf(stderr, "the KMIP server sent no valid response to Get Attributes\n"), 1);
	payload = kmip_response(m, KMIP_OP_GET_ATTRIBUTES, &status, &reason, &message);
	if (payload == -2)
		return (fprintf(stderr, "the KMIP server sent no valid response to Get Attributes\n"), 1);
	if (status != KMIP_STATUS_SUCCESS)
		return result_failure("Get Attributes", m, reason, message);
	if (!kmip_get_enum(m, kmip_find(m, kmip_find(m, payload, KMIP_TAG_ATTRIBUTE),
									KMIP_TAG_ATTRIBUTE_VALUE), &state))
		return (fprintf(stderr, "the KMIP server did not say the state of key %s\n", a->op->key), 1);
	if (state != KMIP_STATE_ACTIVE)
	{
		fprintf(stderr, "key %s is %s\n", a->op->key,
				state < lengthof(state_names) ? state_names[state] : "in an unknown state");
		return 2;
	}
	return 0;
}

/* In the child: Encrypt or Decrypt, the result on stdout. */
static int
crypt_op(SSL *ssl, KmipArgs *a, uint8 *buf, KmipMessage *m)
{
	LedgerGcmOp *op = a->op;
	uint32_t	operation = op->wrap ? KMIP_OP_ENCRYPT : KMIP_OP_DECRYPT;
	uint8		req[2048];
	KmipWriter	w;
	uint32_t	status,
				reason;
	int			message;
	int			payload;
	int			data;
	int			tag;

	kmip_writer_init(&w, req, sizeof(req));
	kmip_request_begin(&w, operation);
	kmip_string(&w, KMIP_TAG_UNIQUE_IDENTIFIER, KMIP_TEXT_STRING, op->key, strlen(op->key));
	kmip_begin(&w, KMIP_TAG_CRYPTO_PARAMETERS);
	/* In the order the specification lists them, which servers expect. */
	kmip_enum(&w, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_MODE_GCM);
	kmip_enum(&w, KMIP_TAG_CRYPTO_ALGORITHM, KMIP_ALGORITHM_AES);
	kmip_integer(&w, KMIP_TAG_TAG_LENGTH, LEDGER_TAG_LEN);
	kmip_end(&w);
	kmip_string(&w, KMIP_TAG_DATA, KMIP_BYTE_STRING, op->in, LEDGER_KEY_LEN);
	kmip_string(&w, KMIP_TAG_IV_COUNTER_NONCE, KMIP_BYTE_STRING, op->iv, sizeof(op->iv));
	kmip_string(&w, KMIP_TAG_AE_ADDITIONAL_DATA, KMIP_BYTE_STRING, op->aad, op->aadlen);
	if (!op->wrap)
		kmip_string(&w, KMIP_TAG_AE_TAG, KMIP_BYTE_STRING, op->in + LEDGER_KEY_LEN, LEDGER_TAG_LEN);
	kmip_request_end(&w);
	if (!exchange(ssl, &w, buf, m))
	{
		ledger_wipe(req, sizeof(req));
		return (fprintf(stderr, "the KMIP server sent no valid response\n"), 1);
	}
	ledger_wipe(req, sizeof(req));
	payload = kmip_response(m, operation, &status, &reason, &message);
	if (payload == -2)
		return (fprintf(stderr, "the KMIP server sent no valid response\n"), 1);
	if (status != KMIP_STATUS_SUCCESS)
		return result_failure(op->wrap ? "Encrypt" : "Decrypt", m, reason, message);
	data = kmip_find(m, payload, KMIP_TAG_DATA);
	tag = kmip_find(m, payload, KMIP_TAG_AE_TAG);
	if (data < 0 || m->items[data].type != KMIP_BYTE_STRING || m->items[data].len != LEDGER_KEY_LEN ||
		(op->wrap && (tag < 0 || m->items[tag].type != KMIP_BYTE_STRING ||
					  m->items[tag].len != LEDGER_TAG_LEN)))
		return (fprintf(stderr, "the KMIP server's answer has data of the wrong length\n"), 1);
	if (write(1, m->items[data].value, LEDGER_KEY_LEN) != LEDGER_KEY_LEN ||
		(op->wrap && write(1, m->items[tag].value, LEDGER_TAG_LEN) != LEDGER_TAG_LEN))
		return 1;
	return 0;
}

static int
kmip_child(void *arg)
{
	KmipArgs   *a = arg;
	uint8	   *buf = malloc(KMIP_MAX_MESSAGE);
	KmipMessage *m = malloc(sizeof(KmipMessage));
	int			code;
	SSL		   *ssl;

	if (buf == NULL || m == NULL)
		return 1;
	ssl = tls_connect(a, &code);
	if (a->client_key != NULL)
		ledger_wipe(a->client_key, a->client_key_len);
	if (ssl == NULL)
		return code;
	if ((code = check_state(ssl, a, buf, m)) == 0)
		code = crypt_op(ssl, a, buf, m);
	ledger_wipe(buf, KMIP_MAX_MESSAGE);
	SSL_shutdown(ssl);
	return code;
}

static void
kmip_validate(const LedgerProvider *p)
{
	(void) ledger_provider_path_option(p, "ca_file");
	if ((ledger_provider_path_option(p, "cert_file") == NULL) !=
		(ledger_provider_path_option(p, "key_file") == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key provider \"%s\" needs both cert_file and key_file, or neither", p->name)));
	if (ledger_provider_int_option(p, "port", DEFAULT_PORT) > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"port\" of key provider \"%s\" must be a TCP port", p->name)));
}

/* One operation on the KMIP server, in a child; the result lands in out. */
static void
kmip_run(const LedgerProvider *p, LedgerGcmOp *op, uint8 *out, int outlen)
{
	LedgerCall	call = {0};
	KmipArgs	a = {0};
	char	   *key_file = ledger_provider_path_option(p, "key_file");

	a.host = ledger_provider_option(p, "host");
	a.port = ledger_provider_int_option(p, "port", DEFAULT_PORT);
	a.ca_file = ledger_provider_path_option(p, "ca_file");
	a.cert_file = ledger_provider_path_option(p, "cert_file");
	a.op = op;
	if (key_file != NULL &&
		(a.client_key = ledger_provider_read_secret_file(p, "client key file", key_file,
														 &a.client_key_len)) == NULL)
		ledger_provider_inaccessible(p, KMIP_HINT, "client key file \"%s\" does not exist", key_file);

	call.output = out;
	call.outmin = call.outcap = outlen;
	PG_TRY();
	{
		ledger_call_provider(p, &call, kmip_child, &a, KMIP_HINT,
							 psprintf("server %s port %d, key %s", a.host, a.port, op->key));
	}
	PG_FINALLY();
	{
		if (a.client_key != NULL)
			ledger_wipe(a.client_key, a.client_key_len);
	}
	PG_END_TRY();
}

const LedgerProviderType ledger_kmip_provider = {
	.name = "kmip",
	.options = kmip_options,
	.validate = kmip_validate,
	.gcm_run = kmip_run,
};
