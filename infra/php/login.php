<?php
// A PHP-side login: ?user=<int>&name=<string>. Stores, besides the user,
// an object referring to itself, a second occurrence of that object (`r:`)
// and a PHP reference (`R:`), as real apps do.
require __DIR__ . '/lib.php';

sb_start();
$cart = new Cart();
$cart->items = ['apple' => 2, 'pear' => 1];
$cart->self = $cart;
$_SESSION['user_id'] = (int) ($_GET['user'] ?? 0);
$_SESSION['username'] = (string) ($_GET['name'] ?? 'php-user');
$_SESSION['roles'] = ['staff', 'editors'];
$_SESSION['cart'] = $cart;
$_SESSION['cart_again'] = $cart;
$_SESSION['alias'] = &$_SESSION['username'];
$_SESSION['price'] = 0.1;
$_SESSION['bytes'] = "\x00\xff|;\"}";
session_write_close();
sb_reply();
