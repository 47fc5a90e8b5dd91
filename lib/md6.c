/* md6.c: not written yet */
