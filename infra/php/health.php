<?php
// Readiness check of the harness: 200 once PHP runs with phpredis's
// session handler.
$ok = extension_loaded('redis') && ini_get('session.save_handler') === 'redis';
http_response_code($ok ? 200 : 500);
header('Content-Type: text/plain');
echo $ok ? "ok\n" : "phpredis session handler missing\n";
