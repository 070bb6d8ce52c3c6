/*
 * keyfile.c - the key ring from a 0600 file (see keyfile.h). The bytes
 * read are held in sodium_malloc'd memory and wiped after parsing.
 */
#include "io/keyfile.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX (64 * 1024)

vox_status vox_keyfile_load(vox_keyring **out, const char *path, char *err,
			    size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	vox_status st = VOX_E_CONFIG;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return VOX_E_CONFIG;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "key file %s: not a regular file", path);
		goto out;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "key file %s: mode %03o lets others read it;"
			 " chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
		st = VOX_E_FORBIDDEN;
		goto out;
	}
	if (sb.st_size > KEYFILE_MAX) {
		snprintf(err, errlen, "key file %s: larger than %d bytes", path,
			 KEYFILE_MAX);
		goto out;
	}
	if (sodium_init() < 0)
		abort();
	buf = sodium_malloc((size_t)sb.st_size + 1);
	if (!buf)
		abort();
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r <= 0) {
			snprintf(err, errlen, "key file %s: read failed", path);
			goto out;
		}
		got += (size_t)r;
	}
	st = vox_keyring_parse(out, buf, got, err, errlen);
out:
	if (buf)
		sodium_free(buf);
	close(fd);
	return st;
}
