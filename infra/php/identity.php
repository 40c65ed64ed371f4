<?php
// What a PHP app reads as the gateway's identity: every
// $_SERVER['HTTP_X_AUTH_REQUEST_*'] (and HTTP_AUTHORIZATION), as JSON. The
// gateway tests send client headers spelled X_Auth_Request_User & co.,
// which PHP reads under the same names, and count forged values here.
// Served by `php -S` (the harness) and by php-fpm (the tests start it).

declare(strict_types=1);

$seen = [];
foreach ($_SERVER as $name => $value) {
    if (str_starts_with((string) $name, 'HTTP_X_AUTH_REQUEST_') || $name === 'HTTP_AUTHORIZATION') {
        $seen[$name] = $value;
    }
}
header('Content-Type: application/json');
header('Cache-Control: no-store');
echo json_encode(['server' => (object) $seen], JSON_THROW_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
