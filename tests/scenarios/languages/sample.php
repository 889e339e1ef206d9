<?php

namespace App\Mail;

use App\Models\User;

interface Sender
{
    public function send(string $to, string $body): bool;
}

class Mailer implements Sender
{
    private array $sent = [];

    public function send(string $to, string $body): bool
    {
        if ($to === '') {
            return false;
        }
        $this->sent[] = [$to, $body];
        return true;
    }

    public function count(): int
    {
        return count($this->sent);
    }
}

function welcome(User $user): string
{
    return "Welcome, " . $user->name;
}
