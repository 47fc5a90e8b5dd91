/* framing.c: not written yet */
