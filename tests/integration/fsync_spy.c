/*
 * fsync_spy.c - an LD_PRELOAD library for test_keys: it records, one line
 * each in the file $VOX_SPY_LOG, every fsync/fdatasync (with the path of
 * the descriptor) and every rename a process makes, then does the real
 * call. A test reads the order back to prove that a file was written
 * durably: data synced before the rename, the directory after it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Append one line to $VOX_SPY_LOG with the real open/write (nothing here
 * is intercepted but the calls below). */
static void spy_line(const char *what, const char *a, const char *b)
{
	const char *log = getenv("VOX_SPY_LOG");
	char line[8400];
	if (!log || !*log)
		return;
	int n = snprintf(line, sizeof(line), "%s %s%s%s\n", what, a, b ? " " : "",
			 b ? b : "");
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, (size_t)n);
	(void)w;
	close(fd);
}

static void spy_fd(const char *what, int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		n = 0;
	path[n] = '\0';
	spy_line(what, path, NULL);
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	spy_fd("fsync", fd);
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	spy_fd("fsync", fd);
	return real(fd);
}

int rename(const char *from, const char *to)
{
	int (*real)(const char *, const char *) =
		(int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	int r = real(from, to);
	if (r == 0)
		spy_line("rename", from, to);
	return r;
}
