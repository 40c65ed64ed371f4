<?php
// Starts the session (taking phpredis's lock with ?locking=1), sets
// $_SESSION['held'] = ?value, keeps the session open for ?ms milliseconds,
// then writes it.
require __DIR__ . '/lib.php';

sb_start();
$_SESSION['held'] = (string) ($_GET['value'] ?? '');
usleep(1000 * max(0, min(10000, (int) ($_GET['ms'] ?? 0))));
session_write_close();
sb_reply();
