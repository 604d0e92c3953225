/*-------------------------------------------------------------------------
 *
 * provider_call.c
 *	  A key provider's work in a child process, with a deadline.
 *
 * A provider that runs a program (command) or a vendor's library
 * (pkcs11) must never hang or crash the backend that asks it: the work
 * runs in a forked child, bytes go in on its stdin and come back on its
 * stdout, and the child is killed once the provider's timeout passes or
 * the backend is asked to cancel.  The child also gives a PKCS#11 module
 * a process of its own, since PKCS#11 state does not survive fork.
 *
 * The child never returns into PostgreSQL code: signals are blocked across
 * the fork and reset in the child, which forgets PostgreSQL's exit
 * callbacks, keeps only fds 0-2, leads a process group of its own (so that
 * a timeout kills whatever it started too), runs the provider's function
 * and leaves with _exit().  Only a cancel or a shutdown request ends a
 * call early; other interrupts wait for it.
 * Exit codes 2 to 5 mean the same for every provider (call_failure()).
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "portability/instr_time.h"

#define POLL_STEP_MS 100
#define DEFAULT_TIMEOUT_MS 10000

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A cancel or a shutdown ends a call; other interrupts can wait for it. */
static bool
must_stop(void)
{
	return QueryCancelPending || ProcDiePending;
}

/* In the child: a clean process that runs "child" and exits. */
static void
run_child(int in, int out, int err, LedgerCallChild child, void *arg)
{
	sigset_t	none;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	on_exit_reset();
	(void) setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	closefrom(3);
	_exit(child(arg));
}

/* Keep the first line of the child's stderr, printable characters only. */
static void
keep_message(LedgerCall *call, const char *buf, ssize_t n, bool *line_done)
{
	size_t		len = strlen(call->message);

	for (ssize_t i = 0; i < n && !*line_done; i++)
	{
		if (buf[i] == '\n')
			*line_done = true;
		else if (len + 1 < sizeof(call->message))
		{
			call->message[len++] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? buf[i] : '?';
			call->message[len] = '\0';
		}
	}
}

/* Wait for the child, killing it if it has not left by the deadline. */
static int
reap(pid_t pid, instr_time start, int timeout_ms, bool *timed_out)
{
	int			status;

	for (;;)
	{
		instr_time	now;
		pid_t		r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		if (INSTR_TIME_GET_MILLISEC(now) > timeout_ms || must_stop())
		{
			*timed_out = !must_stop();
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return status;
		}
		pg_usleep(10 * 1000L);
	}
}

/*
 * Run "child" in a child process: call->input goes to its stdin, its
 * stdout fills call->output (more than outcap bytes sets outlen to
 * outcap + 1), the first line of its stderr becomes call->message.
 */
void
ledger_call(LedgerCall *call, LedgerCallChild child, void *arg)
{
	int			in[2] = {-1, -1},
				out[2] = {-1, -1},
				err[2] = {-1, -1};
	int			written = 0;
	bool		line_done = false;
	bool		timed_out = false;
	instr_time	start;
	pid_t		pid;
	int			status;
	pqsigfunc	old_pipe;
	sigset_t	all,
				saved;

	call->outlen = 0;
	call->message[0] = '\0';
	call->timed_out = false;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
		pipe2(err, O_CLOEXEC) != 0)
	{
		int			save = errno;

		close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
		errno = save;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not create pipes for a key provider: %m")));
	}
	fflush(NULL);
	INSTR_TIME_SET_CURRENT(start);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	pid = fork();
	if (pid == 0)
		run_child(in[0], out[1], err[1], child, arg);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close_fd(&in[0]), close_fd(&out[1]), close_fd(&err[1]);
	if (pid < 0)
	{
		int			save = errno;

		close_fd(&in[1]), close_fd(&out[0]), close_fd(&err[0]);
		errno = save;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a key provider process: %m")));
	}
	old_pipe = pqsignal(SIGPIPE, SIG_IGN);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	if (call->inlen == 0)
		close_fd(&in[1]);

	while (out[0] >= 0 || err[0] >= 0)
	{
		struct pollfd fds[3];
		int			nfds = 0;
		instr_time	now;
		double		left;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		left = call->timeout_ms - INSTR_TIME_GET_MILLISEC(now);
		if (left <= 0 || must_stop())
			break;				/* reap() kills the child */
		if (in[1] >= 0)
			fds[nfds++] = (struct pollfd) {in[1], POLLOUT, 0};
		if (out[0] >= 0)
			fds[nfds++] = (struct pollfd) {out[0], POLLIN, 0};
		if (err[0] >= 0)
			fds[nfds++] = (struct pollfd) {err[0], POLLIN, 0};
		if (poll(fds, nfds, Min((int) left + 1, POLL_STEP_MS)) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nfds; i++)
		{
			char		buf[1024];
			ssize_t		n;

			if (fds[i].revents == 0)
				continue;
			if (fds[i].fd == in[1])
			{
				n = write(in[1], call->input + written, call->inlen - written);
				if (n > 0)
					written += n;
				if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == call->inlen)
					close_fd(&in[1]);
				continue;
			}
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
			{
				close_fd(fds[i].fd == out[0] ? &out[0] : &err[0]);
				continue;
			}
			if (fds[i].fd == err[0])
				keep_message(call, buf, n, &line_done);
			else if (call->outlen + n <= call->outcap)
			{
				memcpy(call->output + call->outlen, buf, n);
				call->outlen += n;
			}
			else
				call->outlen = call->outcap + 1;
			ledger_wipe(buf, sizeof(buf));
		}
	}
	close_fd(&in[1]), close_fd(&out[0]), close_fd(&err[0]);
	status = reap(pid, start, call->timeout_ms, &timed_out);
	pqsignal(SIGPIPE, old_pipe);
	call->timed_out = timed_out;
	call->exit_code = (status >= 0 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
	CHECK_FOR_INTERRUPTS();
}

/*
 * What went wrong with a call that did not exit 0, for an error detail.
 * Exit codes 2 to 5 mean the same for every provider that runs a child.
 */
static const char *
call_failure(const LedgerCall *call)
{
	const char *what;

	if (call->timed_out)
		what = psprintf("it did not answer within %d ms", call->timeout_ms);
	else if (call->exit_code < 0)
		what = "it was killed by a signal";
	else if (call->exit_code == 2)
		what = "the provider key is disabled";
	else if (call->exit_code == 3)
		what = "the provider has no such key";
	else if (call->exit_code == 4)
		what = "the provider denied access to the key";
	else if (call->exit_code == 5)
		what = "the ciphertext does not open under this key and encryption context";
	else
		what = psprintf("it exited with code %d", call->exit_code);
	if (call->message[0] == '\0')
		return what;
	return psprintf("%s: %s", what, call->message);
}

/*
 * Run a provider's child with the provider's timeout, and raise LD001
 * naming "what" if it failed or printed other than outmin to outcap bytes.
 */
void
ledger_call_provider(const LedgerProvider *p, LedgerCall *call, LedgerCallChild child,
					 void *arg, const char *hint, const char *what)
{
	call->timeout_ms = ledger_provider_int_option(p, "timeout_ms", DEFAULT_TIMEOUT_MS);
	ledger_call(call, child, arg);
	if (call->exit_code != 0 || call->timed_out)
	{
		ledger_wipe(call->output, call->outcap);
		ledger_provider_inaccessible(p, hint, "%s: %s", what, call_failure(call));
	}
	if (call->outlen < call->outmin || call->outlen > call->outcap)
	{
		ledger_wipe(call->output, call->outcap);
		ledger_provider_inaccessible(p, hint, "%s: it printed %s bytes, where %s are expected",
									 what,
									 call->outlen > call->outcap ?
									 psprintf("more than %d", call->outcap) :
									 psprintf("%d", call->outlen),
									 call->outmin == call->outcap ?
									 psprintf("%d", call->outcap) :
									 psprintf("%d to %d", call->outmin, call->outcap));
	}
}
