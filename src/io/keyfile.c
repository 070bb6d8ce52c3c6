/*
 * keyfile.c - the key ring from a 0600 file, and the durable append of a
 * new key to it (see keyfile.h). The bytes read are held in
 * sodium_malloc'd memory and wiped after use.
 */
#include "io/keyfile.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX (64 * 1024)

/*
 * Read the key file at fd (opened from path) into *buf (sodium_malloc'd,
 * NUL-terminated; the caller sodium_frees it) after the checks every
 * reader makes: a regular file, owner-only, not too large. *sb gets its
 * status. VOX_E_FORBIDDEN for a mode that lets others in.
 */
static vox_status read_keyfile(int fd, const char *path, struct stat *sb,
			       char **buf, size_t *len, char *err,
			       size_t errlen)
{
	if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
		snprintf(err, errlen, "key file %s: not a regular file", path);
		return VOX_E_CONFIG;
	}
	if (sb->st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "key file %s: mode %03o lets others read it;"
			 " chmod 600 it", path, (unsigned)(sb->st_mode & 0777));
		return VOX_E_FORBIDDEN;
	}
	if (sb->st_size > KEYFILE_MAX) {
		snprintf(err, errlen, "key file %s: larger than %d bytes", path,
			 KEYFILE_MAX);
		return VOX_E_CONFIG;
	}
	if (sodium_init() < 0)
		abort();
	char *b = sodium_malloc((size_t)sb->st_size + 1);
	if (!b)
		abort();
	size_t got = 0;
	while (got < (size_t)sb->st_size) {
		ssize_t r = read(fd, b + got, (size_t)sb->st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "key file %s: read failed", path);
			sodium_free(b);
			return VOX_E_CONFIG;
		}
		got += (size_t)r;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
	return VOX_OK;
}

vox_status vox_keyfile_load(vox_keyring **out, const char *path, char *err,
			    size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return VOX_E_CONFIG;
	}
	vox_status st = read_keyfile(fd, path, &sb, &buf, &len, err, errlen);
	if (st == VOX_OK)
		st = vox_keyring_parse(out, buf, len, err, errlen);
	if (buf)
		sodium_free(buf); /* wipes */
	close(fd);
	return st;
}

/* write(2) all of p. */
static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

vox_status vox_keyfile_append(const char *path, const char *line, size_t len,
			      char *err, size_t errlen)
{
	struct stat sb;
	char *old = NULL, *tmp = NULL, *dir = NULL;
	size_t oldlen = 0;
	vox_status st = VOX_E_CONFIG;
	int fd = -1, dfd = -1;
	uid_t uid = geteuid();
	gid_t gid = getegid();

	/* the old content, checked as a reader would check it */
	int ofd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (ofd >= 0) {
		st = read_keyfile(ofd, path, &sb, &old, &oldlen, err, errlen);
		close(ofd);
		if (st != VOX_OK)
			goto out;
		uid = sb.st_uid;
		gid = sb.st_gid;
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	st = VOX_E_INTERNAL;
	/* the new file beside it, so that the rename stays on one file
	 * system; mkstemp makes it 0600 with O_EXCL (no other process
	 * writes to key files: the close-on-exec flag is for tidiness) */
	size_t pl = strlen(path);
	tmp = vox_malloc(pl + 8);
	snprintf(tmp, pl + 8, "%s.XXXXXX", path);
	const char *slash = strrchr(path, '/');
	dir = slash ? vox_strndup(path, slash == path ? 1 : (size_t)(slash - path))
		    : vox_strndup(".", 1);
	fd = mkstemp(tmp);
	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "key file %s: cannot create a file beside it: %s",
			 path, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* the owner the service reads it as, and owner-only whatever the
	 * umask */
	if (fchmod(fd, 0600) != 0 ||
	    ((uid != geteuid() || gid != getegid()) && fchown(fd, uid, gid) != 0)) {
		snprintf(err, errlen, "key file %s: cannot give the new file mode 0600"
			 " and owner %ld:%ld: %s", path, (long)uid, (long)gid,
			 strerror(errno));
		goto out;
	}
	bool ok = write_all(fd, old ? old : "", oldlen);
	if (ok && oldlen && old[oldlen - 1] != '\n')
		ok = write_all(fd, "\n", 1);
	if (ok)
		ok = write_all(fd, line, len);
	if (!ok || fsync(fd) != 0) {
		snprintf(err, errlen, "key file %s: cannot write the new file: %s", path,
			 strerror(errno));
		goto out;
	}
	int rc = close(fd);
	fd = -1;
	if (rc != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "key file %s: cannot replace it: %s", path,
			 strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL; /* renamed: nothing to remove */
	/* the rename itself is durable only once the directory is */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		snprintf(err, errlen, "key file %s: written, but its directory %s"
			 " cannot be synced: %s", path, dir, strerror(errno));
		goto out;
	}
	st = VOX_OK;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (old)
		sodium_free(old); /* wipes */
	free(dir);
	return st;
}
