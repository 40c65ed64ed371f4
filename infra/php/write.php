<?php
// Sets $_SESSION[?key] = ?value and writes the session.
require __DIR__ . '/lib.php';

sb_start();
$key = (string) ($_GET['key'] ?? '');
if ($key === '') {
    sb_fail(400, 'key required');
}
$_SESSION[$key] = (string) ($_GET['value'] ?? '');
session_write_close();
sb_reply();
