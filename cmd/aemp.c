/* aemp.c: not written yet */
