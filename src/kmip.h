/*-------------------------------------------------------------------------
 *
 * kmip.h
 *	  The subset of KMIP's TTLV encoding that the kmip key provider needs.
 *
 * No server dependency, so that a libFuzzer harness can drive the parser
 * (tools/fuzz_kmip.c).  See kmip.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_KMIP_H
#define LEDGER_KMIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Item types */
#define KMIP_STRUCTURE			0x01
#define KMIP_INTEGER			0x02
#define KMIP_LONG_INTEGER		0x03
#define KMIP_BIG_INTEGER		0x04
#define KMIP_ENUMERATION		0x05
#define KMIP_BOOLEAN			0x06
#define KMIP_TEXT_STRING		0x07
#define KMIP_BYTE_STRING		0x08
#define KMIP_DATE_TIME			0x09
#define KMIP_INTERVAL			0x0A

/* Tags */
#define KMIP_TAG_ATTRIBUTE				0x420008
#define KMIP_TAG_ATTRIBUTE_NAME			0x42000A
#define KMIP_TAG_ATTRIBUTE_VALUE		0x42000B
#define KMIP_TAG_BATCH_COUNT			0x42000D
#define KMIP_TAG_BATCH_ITEM				0x42000F
#define KMIP_TAG_BLOCK_CIPHER_MODE		0x420011
#define KMIP_TAG_CRYPTO_ALGORITHM		0x420028
#define KMIP_TAG_CRYPTO_PARAMETERS		0x42002B
#define KMIP_TAG_IV_COUNTER_NONCE		0x42003D
#define KMIP_TAG_OPERATION				0x42005C
#define KMIP_TAG_PROTOCOL_VERSION		0x420069
#define KMIP_TAG_PROTOCOL_MAJOR			0x42006A
#define KMIP_TAG_PROTOCOL_MINOR			0x42006B
#define KMIP_TAG_REQUEST_HEADER			0x420077
#define KMIP_TAG_REQUEST_MESSAGE		0x420078
#define KMIP_TAG_REQUEST_PAYLOAD		0x420079
#define KMIP_TAG_RESPONSE_HEADER		0x42007A
#define KMIP_TAG_RESPONSE_MESSAGE		0x42007B
#define KMIP_TAG_RESPONSE_PAYLOAD		0x42007C
#define KMIP_TAG_RESULT_MESSAGE			0x42007D
#define KMIP_TAG_RESULT_REASON			0x42007E
#define KMIP_TAG_RESULT_STATUS			0x42007F
#define KMIP_TAG_UNIQUE_IDENTIFIER		0x420094
#define KMIP_TAG_DATA					0x4200C2
#define KMIP_TAG_TAG_LENGTH				0x4200CE
#define KMIP_TAG_AE_ADDITIONAL_DATA		0x4200FE	/* KMIP 1.4 */
#define KMIP_TAG_AE_TAG					0x4200FF	/* KMIP 1.4 */

/* Enumerations */
#define KMIP_OP_GET_ATTRIBUTES		0x0B
#define KMIP_OP_ENCRYPT				0x1F
#define KMIP_OP_DECRYPT				0x20
#define KMIP_ALGORITHM_AES			0x03
#define KMIP_MODE_GCM				0x09
#define KMIP_STATUS_SUCCESS			0x00
#define KMIP_STATE_ACTIVE			0x02

#define KMIP_HEADER_LEN		8
#define KMIP_MAX_MESSAGE	(64 * 1024)
#define KMIP_MAX_ITEMS		256
#define KMIP_MAX_DEPTH		16

/* A message being written into a caller's buffer. */
typedef struct KmipWriter
{
	uint8_t    *buf;
	size_t		cap;
	size_t		len;
	int			depth;
	size_t		open[KMIP_MAX_DEPTH];	/* offsets of open structures */
	bool		overflow;		/* too long or too deep: the message is void */
} KmipWriter;

/* One item of a parsed message; "parent" indexes its structure, -1 at top. */
typedef struct KmipItem
{
	uint32_t	tag;
	uint8_t		type;
	int			parent;
	const uint8_t *value;
	uint32_t	len;
} KmipItem;

typedef struct KmipMessage
{
	int			n;
	KmipItem	items[KMIP_MAX_ITEMS];
} KmipMessage;

extern void kmip_writer_init(KmipWriter *w, uint8_t *buf, size_t cap);
extern void kmip_begin(KmipWriter *w, uint32_t tag);
extern void kmip_end(KmipWriter *w);
extern void kmip_integer(KmipWriter *w, uint32_t tag, int32_t value);
extern void kmip_enum(KmipWriter *w, uint32_t tag, uint32_t value);
extern void kmip_string(KmipWriter *w, uint32_t tag, uint8_t type,
						const void *value, size_t len);
extern void kmip_request_begin(KmipWriter *w, uint32_t operation);
extern void kmip_request_end(KmipWriter *w);

extern bool kmip_parse(const uint8_t *buf, size_t len, KmipMessage *m);
extern size_t kmip_message_length(const uint8_t *header);
extern int	kmip_find(const KmipMessage *m, int parent, uint32_t tag);
extern bool kmip_get_enum(const KmipMessage *m, int item, uint32_t *value);
extern int	kmip_response(const KmipMessage *m, uint32_t operation,
						  uint32_t *status, uint32_t *reason, int *message);

#endif							/* LEDGER_KMIP_H */
