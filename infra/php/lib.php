<?php
// Shared by the test pages (see infra/README.md, "PHP"): configures the
// session from the query string, starts it, and describes it as JSON.
//
//   ?format=php|php_binary|php_serialize   session.serialize_handler (default php)
//   ?prefix=myapp:                         phpredis key prefix (save_path ?prefix=)
//   ?locking=1                             redis.session.locking_enabled
//
// The session id comes from the PHPSESSID cookie, as in any PHP app.

declare(strict_types=1);

/** An object kept in sessions by the tests; refers to itself. */
final class Cart
{
    public array $items = [];
    public ?Cart $self = null;
}

function sb_fail(int $status, string $why): never
{
    http_response_code($status);
    header('Content-Type: text/plain');
    echo $why, "\n";
    exit;
}

function sb_start(array $options = []): void
{
    $format = $_GET['format'] ?? 'php';
    if (!in_array($format, ['php', 'php_binary', 'php_serialize'], true)) {
        sb_fail(400, 'bad format');
    }
    ini_set('session.serialize_handler', $format);
    if (isset($_GET['prefix'])) {
        if (!preg_match('/^[A-Za-z0-9_:.-]{1,64}$/', $_GET['prefix'])) {
            sb_fail(400, 'bad prefix');
        }
        ini_set('session.save_path', ini_get('session.save_path') . '?prefix=' . $_GET['prefix']);
    }
    ini_set('redis.session.locking_enabled', ($_GET['locking'] ?? '0') === '1' ? '1' : '0');
    if (!session_start($options)) {
        sb_fail(500, 'session_start failed');
    }
}

/** Whether $_SESSION[$a] and $_SESSION[$b] are one PHP reference. */
function sb_same_reference(string $a, string $b): bool
{
    if (!array_key_exists($a, $_SESSION) || !array_key_exists($b, $_SESSION)) {
        return false;
    }
    $ra = ReflectionReference::fromArrayElement($_SESSION, $a);
    $rb = ReflectionReference::fromArrayElement($_SESSION, $b);
    return $ra !== null && $rb !== null && $ra->getId() === $rb->getId();
}

/** The session as JSON: plain values as they are, objects by class. */
function sb_reply(array $extra = []): never
{
    $values = [];
    foreach ($_SESSION as $k => $v) {
        $values[$k] = is_object($v) ? ['object' => get_class($v)] : $v;
    }
    $cart = $_SESSION['cart'] ?? null;
    header('Content-Type: application/json');
    echo json_encode([
        'id' => session_id(),
        'values' => (object) $values,
        // What PHP would write back for this session, byte for byte.
        'encoded' => base64_encode((string) session_encode()),
        'cart_is_cart' => $cart instanceof Cart && $cart->self === $cart,
        'cart_again_is_cart' => $cart !== null && ($_SESSION['cart_again'] ?? null) === $cart,
        'alias_is_reference' => sb_same_reference('alias', 'username'),
    ] + $extra, JSON_THROW_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
    exit;
}
