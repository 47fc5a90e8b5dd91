/* certgen.c: not written yet */
