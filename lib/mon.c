/* mon.c: not written yet */
