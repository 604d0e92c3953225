/*-------------------------------------------------------------------------
 *
 * kmip.c
 *	  KMIP's TTLV encoding: writing requests and reading responses.
 *
 * Each item is a 3-byte tag, a 1-byte type, a 4-byte big-endian length and
 * the value, padded with zeros to a multiple of 8 bytes; a structure's
 * value is its items.  Only what the kmip provider sends and reads is
 * here: structures, integers, enumerations, text and byte strings.  The
 * parser accepts any well-formed message of every type, but checks each
 * length against its type and its enclosing structure, the padding, the
 * nesting depth and the item count, so that a hostile server cannot make
 * it read out of bounds (tools/fuzz_kmip.c).
 *
 * No server dependency: the parser is fuzzed on its own.
 *
 *-------------------------------------------------------------------------
 */
#include "kmip.h"

#include <string.h>

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | p[3];
}

static size_t
padded(size_t len)
{
	return (len + 7) & ~(size_t) 7;
}

void
kmip_writer_init(KmipWriter *w, uint8_t *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
}

/* An item's header and value; structures get their length at kmip_end. */
static void
put_item(KmipWriter *w, uint32_t tag, uint8_t type, const void *value, size_t len)
{
	size_t		total = KMIP_HEADER_LEN + padded(len);

	if (w->overflow || len > KMIP_MAX_MESSAGE || w->cap - w->len < total)
	{
		w->overflow = true;
		return;
	}
	put_u32(w->buf + w->len, tag << 8 | type);
	put_u32(w->buf + w->len + 4, (uint32_t) len);
	memset(w->buf + w->len + KMIP_HEADER_LEN, 0, padded(len));
	if (len > 0)
		memcpy(w->buf + w->len + KMIP_HEADER_LEN, value, len);
	w->len += total;
}

void
kmip_begin(KmipWriter *w, uint32_t tag)
{
	if (w->depth == KMIP_MAX_DEPTH)
		w->overflow = true;
	if (w->overflow)
		return;
	w->open[w->depth++] = w->len;
	put_item(w, tag, KMIP_STRUCTURE, NULL, 0);
}

void
kmip_end(KmipWriter *w)
{
	size_t		start;

	if (w->overflow || w->depth == 0)
	{
		w->overflow = true;
		return;
	}
	start = w->open[--w->depth];
	put_u32(w->buf + start + 4, (uint32_t) (w->len - start - KMIP_HEADER_LEN));
}

void
kmip_integer(KmipWriter *w, uint32_t tag, int32_t value)
{
	uint8_t		v[4];

	put_u32(v, (uint32_t) value);
	put_item(w, tag, KMIP_INTEGER, v, 4);
}

void
kmip_enum(KmipWriter *w, uint32_t tag, uint32_t value)
{
	uint8_t		v[4];

	put_u32(v, value);
	put_item(w, tag, KMIP_ENUMERATION, v, 4);
}

void
kmip_string(KmipWriter *w, uint32_t tag, uint8_t type, const void *value, size_t len)
{
	put_item(w, tag, type, value, len);
}

/*
 * A request of one batch item, in protocol version 1.4: the first version
 * with authenticated encryption data.  The caller writes the payload's
 * items, then calls kmip_request_end.
 */
void
kmip_request_begin(KmipWriter *w, uint32_t operation)
{
	kmip_begin(w, KMIP_TAG_REQUEST_MESSAGE);
	kmip_begin(w, KMIP_TAG_REQUEST_HEADER);
	kmip_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	kmip_integer(w, KMIP_TAG_PROTOCOL_MAJOR, 1);
	kmip_integer(w, KMIP_TAG_PROTOCOL_MINOR, 4);
	kmip_end(w);
	kmip_integer(w, KMIP_TAG_BATCH_COUNT, 1);
	kmip_end(w);
	kmip_begin(w, KMIP_TAG_BATCH_ITEM);
	kmip_enum(w, KMIP_TAG_OPERATION, operation);
	kmip_begin(w, KMIP_TAG_REQUEST_PAYLOAD);
}

void
kmip_request_end(KmipWriter *w)
{
	kmip_end(w);				/* payload */
	kmip_end(w);				/* batch item */
	kmip_end(w);				/* message */
	if (w->depth != 0)
		w->overflow = true;
}

/* Does a value of this type have this length? */
static bool
length_fits(uint8_t type, uint32_t len)
{
	switch (type)
	{
		case KMIP_INTEGER:
		case KMIP_ENUMERATION:
		case KMIP_INTERVAL:
			return len == 4;
		case KMIP_LONG_INTEGER:
		case KMIP_BOOLEAN:
		case KMIP_DATE_TIME:
			return len == 8;
		case KMIP_BIG_INTEGER:
			return len % 8 == 0;
		case KMIP_STRUCTURE:
		case KMIP_TEXT_STRING:
		case KMIP_BYTE_STRING:
			return true;
		default:
			return false;
	}
}

/* The total length of a message from its 8-byte header, or 0 if unusable. */
size_t
kmip_message_length(const uint8_t *header)
{
	uint32_t	len = get_u32(header + 4);

	if (header[3] != KMIP_STRUCTURE || len > KMIP_MAX_MESSAGE - KMIP_HEADER_LEN ||
		len % 8 != 0)
		return 0;
	return KMIP_HEADER_LEN + len;
}

/*
 * Parse one message that fills buf exactly.  Returns false on anything
 * malformed: a length that does not fit its type or its structure, bad
 * padding, too many items or too deep a nesting, or trailing bytes.
 */
bool
kmip_parse(const uint8_t *buf, size_t len, KmipMessage *m)
{
	size_t		end[KMIP_MAX_DEPTH];
	int			parent[KMIP_MAX_DEPTH];
	int			depth = 0;
	size_t		pos = 0;

	m->n = 0;
	if (len < KMIP_HEADER_LEN || len > KMIP_MAX_MESSAGE)
		return false;
	while (pos < len)
	{
		KmipItem   *it;
		uint32_t	vlen;
		size_t		limit = depth > 0 ? end[depth - 1] : len;

		if (m->n == KMIP_MAX_ITEMS || limit - pos < KMIP_HEADER_LEN ||
			(depth == 0 && pos != 0))
			return false;
		it = &m->items[m->n];
		it->tag = get_u32(buf + pos) >> 8;
		it->type = buf[pos + 3];
		vlen = get_u32(buf + pos + 4);
		it->parent = depth > 0 ? parent[depth - 1] : -1;
		it->value = buf + pos + KMIP_HEADER_LEN;
		it->len = vlen;
		if (!length_fits(it->type, vlen) || vlen > limit - pos - KMIP_HEADER_LEN ||
			padded(vlen) > limit - pos - KMIP_HEADER_LEN)
			return false;
		for (size_t i = vlen; i < padded(vlen); i++)
			if (it->value[i] != 0)
				return false;
		if (it->type == KMIP_STRUCTURE && vlen % 8 != 0)
			return false;
		pos += KMIP_HEADER_LEN;
		if (it->type == KMIP_STRUCTURE)
		{
			if (depth == KMIP_MAX_DEPTH)
				return false;
			end[depth] = pos + vlen;
			parent[depth++] = m->n;
		}
		else
			pos += padded(vlen);
		m->n++;
		/* Close every structure that ends here. */
		while (depth > 0 && pos == end[depth - 1])
			depth--;
	}
	return depth == 0 && pos == len;
}

/* The first item directly inside item "parent" (-1: the top) with "tag". */
int
kmip_find(const KmipMessage *m, int parent, uint32_t tag)
{
	for (int i = parent + 1; i < m->n; i++)
		if (m->items[i].parent == parent && m->items[i].tag == tag)
			return i;
	return -1;
}

bool
kmip_get_enum(const KmipMessage *m, int item, uint32_t *value)
{
	if (item < 0 || m->items[item].type != KMIP_ENUMERATION)
		return false;
	*value = get_u32(m->items[item].value);
	return true;
}

/*
 * The outcome of a response's one batch item for "operation": its result
 * status and reason (0 if none), the index of its result message (-1 if
 * none), and the index of its payload, returned (-1 if none).  Returns -2
 * if the message is not such a response; the outputs are set either way.
 */
int
kmip_response(const KmipMessage *m, uint32_t operation, uint32_t *status,
			  uint32_t *reason, int *message)
{
	int			msg = kmip_find(m, -1, KMIP_TAG_RESPONSE_MESSAGE);
	int			batch = kmip_find(m, msg, KMIP_TAG_BATCH_ITEM);
	uint32_t	op;

	*status = *reason = 0;
	*message = -1;
	if (msg != 0 || batch < 0 || m->items[batch].type != KMIP_STRUCTURE ||
		!kmip_get_enum(m, kmip_find(m, batch, KMIP_TAG_RESULT_STATUS), status))
		return -2;
	if (kmip_get_enum(m, kmip_find(m, batch, KMIP_TAG_OPERATION), &op) && op != operation)
		return -2;
	if (!kmip_get_enum(m, kmip_find(m, batch, KMIP_TAG_RESULT_REASON), reason))
		*reason = 0;
	*message = kmip_find(m, batch, KMIP_TAG_RESULT_MESSAGE);
	if (*message >= 0 && m->items[*message].type != KMIP_TEXT_STRING)
		*message = -1;
	return kmip_find(m, batch, KMIP_TAG_RESPONSE_PAYLOAD);
}
