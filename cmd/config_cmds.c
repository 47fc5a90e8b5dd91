/* config_cmds.c: not written yet */
