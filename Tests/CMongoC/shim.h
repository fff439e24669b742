#ifndef CMONGOC_SHIM_H
#define CMONGOC_SHIM_H
/* The whole C driver, linked: for the tests' own MongoDB reader. */
#include <mongoc/mongoc.h>
#endif
