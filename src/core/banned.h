/*
 * banned.h - libc calls that are easy to misuse are compile errors here.
 * Included last by common.h, after the system headers that declare them.
 * Use snprintf, memcpy with explicit lengths and strtol/strtoll instead.
 */
#ifndef VOX_BANNED_H
#define VOX_BANNED_H

#define VOX_BANNED(func) sorry_##func##_is_banned_in_vox

#undef strcpy
#define strcpy(x, y) VOX_BANNED(strcpy)
#undef strcat
#define strcat(x, y) VOX_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) VOX_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) VOX_BANNED(strncat)
#undef sprintf
#define sprintf(...) VOX_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) VOX_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) VOX_BANNED(strtok)
#undef atoi
#define atoi(x) VOX_BANNED(atoi)
#undef atol
#define atol(x) VOX_BANNED(atol)
#undef gets
#define gets(x) VOX_BANNED(gets)

#endif
