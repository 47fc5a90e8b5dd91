/* spawn.c: not written yet */
