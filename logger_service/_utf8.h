/*
 * UTF-8 checks for the C modules of the record formats (_scan.c, _escape.c):
 * a character at a time (utf8Char), and 16 or 32 bytes at a time with the
 * tables of the lookup method of Keiser and Lemire ("Validating UTF-8 in
 * less than one instruction per byte", 2021).  Each byte and the one
 * before it index three 16-entry tables whose AND says which rule the pair
 * breaks; a byte that must continue a 3- or 4-byte character is found from
 * the bytes two and three before it.  Include Python.h first.
 */

#ifndef LINELOGGER_UTF8_H
#define LINELOGGER_UTF8_H

#include <stdint.h>

/*
 * The length of the valid UTF-8 character at s[0] (s[0] >= 0x80), of the
 * n bytes left, or 0 if there is none; *subpart is then set to how many
 * bytes Python's decoder reports as one error (the maximal subpart: the
 * lead and the continuation bytes that were valid so far, at least 1).
 */
static inline Py_ssize_t
utf8Char(const uint8_t *s, Py_ssize_t n, Py_ssize_t *subpart)
{
    uint8_t c = s[0], low = 0x80, high = 0xbf;
    Py_ssize_t len;

    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            low = 0xa0;
        else if (c == 0xed)
            high = 0x9f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            low = 0x90;
        else if (c == 0xf4)
            high = 0x8f;
    }
    else {
        *subpart = 1;
        return 0;
    }
    Py_ssize_t k = 1;
    if (k < n && s[k] >= low && s[k] <= high) {
        for (k = 2; k < len && k < n && (s[k] & 0xc0) == 0x80; k++)
            ;
    }
    if (k == len)
        return len;
    *subpart = k;
    return 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSSE3_PATH 1
#include <immintrin.h>
#endif

#ifdef HAVE_SSSE3_PATH

/* Bits of the lookup tables: which rule a pair of bytes breaks. */
#define TOO_SHORT (1 << 0)      /* 11______ then 0_______ or 11______ */
#define TOO_LONG (1 << 1)       /* 0_______ then 10______ */
#define OVERLONG_3 (1 << 2)     /* 11100000 100_____ */
#define TOO_LARGE (1 << 3)      /* 11110100 1001____, 11110100 101_____, 11110101+ 10______ */
#define SURROGATE (1 << 4)      /* 11101101 101_____ */
#define OVERLONG_2 (1 << 5)     /* 1100000_ 10______ */
#define TOO_LARGE_1000 (1 << 6) /* 11110101+ 1000____ */
#define OVERLONG_4 (1 << 6)     /* 11110000 1000____ */
#define TWO_CONTS (1 << 7)      /* 10______ 10______ */
#define CARRY (TOO_SHORT | TOO_LONG | TWO_CONTS)
#define LARGE (CARRY | TOO_LARGE | TOO_LARGE_1000)

/* By the high half of a byte: what it breaks followed by the next byte. */
#define BYTE1_HIGH \
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, \
    TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS, TOO_SHORT | OVERLONG_2, TOO_SHORT, \
    TOO_SHORT | OVERLONG_3 | SURROGATE, TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4
/* By its low half. */
#define BYTE1_LOW \
    CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4, CARRY | OVERLONG_2, CARRY, CARRY, \
    CARRY | TOO_LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, \
    LARGE | SURROGATE, LARGE, LARGE
/* By the high half of the next byte. */
#define BYTE2_HIGH \
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, \
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4, \
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE, \
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE, \
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE, \
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT

static const uint8_t byte1High[16] = {BYTE1_HIGH};
static const uint8_t byte1Low[16] = {BYTE1_LOW};
static const uint8_t byte2High[16] = {BYTE2_HIGH};

/* A block ends in the middle of a character when its last byte leads one,
   or the one before leads a 3- or 4-byte one, or the one before that a
   4-byte one: a byte above these ends it so. */
static const uint8_t lastComplete[32] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0xf0 - 1, 0xe0 - 1, 0xc0 - 1,
};

#endif /* HAVE_SSSE3_PATH */

#endif /* LINELOGGER_UTF8_H */
