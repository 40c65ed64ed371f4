<?php
// Reads the session without writing it.
require __DIR__ . '/lib.php';

sb_start(['read_and_close' => true]);
sb_reply();
