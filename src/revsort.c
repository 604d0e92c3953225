/*-------------------------------------------------------------------------
 *
 * revsort.c
 *	  ledger_verify()'s revisions, regrouped by transaction in bounded
 *	  memory.
 *
 * The journal is read in physical order, and each revision becomes a
 * record of 64 bytes: its place in the chain (transaction sequence number,
 * table id, document id, version) and its leaf hash.  Records collect in
 * an array; when the records held reach the memory budget, the array is
 * sorted and written to a temporary file as one run.  Parallel workers
 * send their records as runs they have sorted, which are kept in memory
 * while the budget allows and written out beyond it.  At the end the
 * array is sorted, and, if there are runs, becomes one more (in memory)
 * and all runs are merged.  A journal that fits is never written out.
 *
 * Each run in a file holds a buffer of BLCKSZ while it is open, so their
 * number is bounded: whenever "order" runs of one generation are in files,
 * they are merged into one run of the next generation.  A huge journal
 * under a small budget is thus merged in a few passes, as tuplesort does,
 * with the buffers of at most (order - 1) runs per generation open.
 *
 * tuplesort would do the same for tuples, at about twice the memory per
 * record (a SortTuple and a MinimalTuple header each), so the bench's
 * million revisions would spill to disk under the default
 * maintenance_work_mem, and every comparison would go through
 * SortSupport; these records are fixed-size and compared inline.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "lib/binaryheap.h"
#include "storage/buffile.h"
#include "utils/memutils.h"

/* A sorted run: in a temporary file, or in memory. */
typedef struct Run
{
	BufFile    *file;
	LedgerRevRecord *mem;
	int64		n;
	int64		pos;			/* next to read, in memory */
	int			generation;		/* of a run in a file: merges behind it */
} Run;

/* The lowest records of several runs, in order. */
typedef struct Merge
{
	Run		  **runs;
	int			n;
	LedgerRevRecord *heads;		/* each run's current record */
	binaryheap *heap;			/* of run numbers, lowest head first */
} Merge;

struct LedgerRevSort
{
	MemoryContext cxt;			/* the caller's, which outlives the runs */
	LedgerRevRecord *mem;		/* the records being collected */
	int64		n;
	int64		size;			/* allocated */
	int64		max;			/* the memory budget, in records */
	int64		held;			/* records in in-memory runs */
	int64		pos;			/* next to read, with no runs */
	int			order;			/* runs of a generation merged at once */
	int			nruns;
	Run		  **runs;
	Merge		merge;			/* of every run, once all are in */
};

static inline int
cmp_int64(int64 a, int64 b)
{
	return a < b ? -1 : a > b;
}

int
ledger_rev_record_cmp(const LedgerRevRecord *a, const LedgerRevRecord *b)
{
	int			c;

	if ((c = cmp_int64(a->seq, b->seq)) != 0)
		return c;
	/* An entry precedes its revisions, whatever ids a forged row carries. */
	if ((c = (int) ((b->flags & LEDGER_REV_ENTRY) != 0) -
		 (int) ((a->flags & LEDGER_REV_ENTRY) != 0)) != 0)
		return c;
	if ((c = cmp_int64(a->table_id, b->table_id)) != 0 ||
		(c = cmp_int64(a->doc_id, b->doc_id)) != 0)
		return c;
	return cmp_int64(a->version, b->version);
}

#define ST_SORT sort_records
#define ST_ELEMENT_TYPE LedgerRevRecord
#define ST_COMPARE(a, b) ledger_rev_record_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* For a parallel worker's runs. */
void
ledger_rev_records_sort(LedgerRevRecord *recs, int64 n)
{
	sort_records(recs, n);
}

LedgerRevSort *
ledger_revsort_begin(int mem_kb)
{
	LedgerRevSort *s = palloc0(sizeof(LedgerRevSort));

	s->cxt = CurrentMemoryContext;
	s->max = Max((int64) mem_kb * 1024 / (int64) sizeof(LedgerRevRecord), 1024);
	/* one merge's file buffers within an eighth of the budget */
	s->order = (int) Max(6, Min((int64) mem_kb * 1024 / 8 / BLCKSZ, 500));
	s->size = Min(s->max, 1024);
	s->mem = palloc(sizeof(LedgerRevRecord) * s->size);
	return s;
}

static Run *
new_run(LedgerRevSort *s)
{
	Run		   *run = MemoryContextAllocZero(s->cxt, sizeof(Run));

	s->runs = s->nruns == 0 ? MemoryContextAlloc(s->cxt, sizeof(Run *)) :
		repalloc(s->runs, sizeof(Run *) * (s->nruns + 1));
	s->runs[s->nruns++] = run;
	return run;
}

static void
rewind_run(Run *run)
{
	if (BufFileSeek(run->file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of ledger_verify: %m")));
}

static void merge_begin(Merge *m, Run **runs, int n);
static const LedgerRevRecord *merge_peek(Merge *m);
static void merge_next(Merge *m);
static void merge_end(Merge *m);

/* The runs of one generation in files, merged into one of the next. */
static void
merge_generation(LedgerRevSort *s, int generation)
{
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	Run		  **members = palloc(sizeof(Run *) * s->nruns);
	int			n = 0;
	int			kept = 0;
	Run		   *out;
	Merge		m;
	const LedgerRevRecord *r;

	for (int i = 0; i < s->nruns; i++)
	{
		if (s->runs[i]->file != NULL && s->runs[i]->generation == generation)
			members[n++] = s->runs[i];
		else
			s->runs[kept++] = s->runs[i];
	}
	s->nruns = kept;
	out = new_run(s);
	out->file = BufFileCreateTemp(false);
	out->generation = generation + 1;
	merge_begin(&m, members, n);
	while ((r = merge_peek(&m)) != NULL)
	{
		BufFileWrite(out->file, unconstify(LedgerRevRecord *, r), sizeof(LedgerRevRecord));
		out->n++;
		merge_next(&m);
	}
	merge_end(&m);
	for (int i = 0; i < n; i++)
	{
		BufFileClose(members[i]->file);
		pfree(members[i]);
	}
	pfree(members);
	rewind_run(out);
	ereport(DEBUG1,
			(errmsg_internal("ledger_verify: %d sorted runs of generation %d merged into one of %lld records",
							 n, generation, (long long) out->n)));
	MemoryContextSwitchTo(old);
}

static int
runs_of_generation(LedgerRevSort *s, int generation)
{
	int			n = 0;

	for (int i = 0; i < s->nruns; i++)
		n += s->runs[i]->file != NULL && s->runs[i]->generation == generation;
	return n;
}

/* Sorted records as a run in a temporary file. */
static void
write_run(LedgerRevSort *s, const LedgerRevRecord *recs, int64 n)
{
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	Run		   *run = new_run(s);

	run->file = BufFileCreateTemp(false);
	run->n = n;
	/* PG15 takes a non-const pointer; it only reads */
	BufFileWrite(run->file, unconstify(LedgerRevRecord *, recs),
				 sizeof(LedgerRevRecord) * n);
	rewind_run(run);
	MemoryContextSwitchTo(old);
	for (int g = 0; runs_of_generation(s, g) >= s->order; g++)
		merge_generation(s, g);
}

void
ledger_revsort_put(LedgerRevSort *s, const LedgerRevRecord *r)
{
	if (s->n == s->size)
	{
		if (s->size + s->held >= s->max)
		{
			sort_records(s->mem, s->n);
			write_run(s, s->mem, s->n);
			s->n = 0;
		}
		else
		{
			s->size = Min(s->max - s->held, s->size * 2);
			s->mem = repalloc_huge(s->mem, sizeof(LedgerRevRecord) * s->size);
		}
	}
	s->mem[s->n++] = *r;
}

/* Records already sorted, as one run. */
void
ledger_revsort_put_run(LedgerRevSort *s, const LedgerRevRecord *recs, int64 n)
{
	Run		   *run;

	if (n == 0)
		return;
	if (s->size + s->held + n > s->max)
	{
		write_run(s, recs, n);
		return;
	}
	run = new_run(s);
	run->mem = MemoryContextAllocHuge(s->cxt, sizeof(LedgerRevRecord) * n);
	memcpy(run->mem, recs, sizeof(LedgerRevRecord) * n);
	run->n = n;
	s->held += n;
}

/* The next record of a run into its head; false at the run's end. */
static bool
read_head(Merge *m, int i)
{
	Run		   *run = m->runs[i];
	size_t		got;

	if (run->file == NULL)
	{
		if (run->pos == run->n)
			return false;
		m->heads[i] = run->mem[run->pos++];
		return true;
	}
	got = BufFileRead(run->file, &m->heads[i], sizeof(LedgerRevRecord));
	if (got == 0)
		return false;
	if (got != sizeof(LedgerRevRecord))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read a temporary file of ledger_verify: read only %zu of %zu bytes",
						got, sizeof(LedgerRevRecord))));
	return true;
}

/* binaryheap keeps its greatest element first: invert the order. */
static int
merge_cmp(Datum a, Datum b, void *arg)
{
	Merge	   *m = arg;

	return ledger_rev_record_cmp(&m->heads[DatumGetInt32(b)],
								 &m->heads[DatumGetInt32(a)]);
}

static void
merge_begin(Merge *m, Run **runs, int n)
{
	m->runs = runs;
	m->n = n;
	m->heads = palloc(sizeof(LedgerRevRecord) * Max(n, 1));
	m->heap = binaryheap_allocate(Max(n, 1), merge_cmp, m);
	for (int i = 0; i < n; i++)
		if (read_head(m, i))
			binaryheap_add_unordered(m->heap, Int32GetDatum(i));
	binaryheap_build(m->heap);
}

static const LedgerRevRecord *
merge_peek(Merge *m)
{
	if (binaryheap_empty(m->heap))
		return NULL;
	return &m->heads[DatumGetInt32(binaryheap_first(m->heap))];
}

static void
merge_next(Merge *m)
{
	int			run = DatumGetInt32(binaryheap_first(m->heap));

	if (read_head(m, run))
		binaryheap_replace_first(m->heap, Int32GetDatum(run));
	else
		(void) binaryheap_remove_first(m->heap);
}

static void
merge_end(Merge *m)
{
	pfree(m->heads);
	binaryheap_free(m->heap);
}

/* Every record is in: sort them, or merge the runs. */
void
ledger_revsort_done(LedgerRevSort *s)
{
	sort_records(s->mem, s->n);
	if (s->nruns == 0)
		return;
	if (s->n > 0)
	{
		/* in memory already, and within the budget */
		Run		   *run = new_run(s);

		run->mem = s->mem;
		run->n = s->n;
	}
	else
		pfree(s->mem);
	s->mem = NULL;
	merge_begin(&s->merge, s->runs, s->nruns);
}

/* The lowest record not yet passed, or NULL when all have been. */
const LedgerRevRecord *
ledger_revsort_peek(LedgerRevSort *s)
{
	if (s->nruns == 0)
		return s->pos < s->n ? &s->mem[s->pos] : NULL;
	return merge_peek(&s->merge);
}

void
ledger_revsort_next(LedgerRevSort *s)
{
	if (s->nruns == 0)
		s->pos++;
	else
		merge_next(&s->merge);
}

void
ledger_revsort_end(LedgerRevSort *s)
{
	for (int i = 0; i < s->nruns; i++)
	{
		if (s->runs[i]->file != NULL)
			BufFileClose(s->runs[i]->file);
		else
			pfree(s->runs[i]->mem);
		pfree(s->runs[i]);
	}
	if (s->mem != NULL)
		pfree(s->mem);
	pfree(s);
}
