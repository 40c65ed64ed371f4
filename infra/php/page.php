<?php
// An application page: starts the session as any PHP page does (PHP writes
// it back, or extends its expiry, when the request ends) and says who is
// signed in from $_SESSION alone, as the README suggests apps do.
require __DIR__ . '/lib.php';

sb_start();
$bridge = $_SESSION['bridge'] ?? null;
sb_reply([
    'signed_in' => is_array($bridge) && isset($bridge['sub']),
    'sub' => is_array($bridge) ? ($bridge['sub'] ?? null) : null,
]);
