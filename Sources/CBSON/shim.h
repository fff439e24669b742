#ifndef CBSON_SHIM_H
#define CBSON_SHIM_H
/* libbson only: libmongoc is loaded at run time by ChangeStream's MongoDriver,
   when a MongoDB sink is made (see there why). */
#include <bson/bson.h>
#endif
