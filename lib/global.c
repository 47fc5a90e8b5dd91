/* global.c: not written yet */
