package com.example.billing;

import java.util.ArrayList;
import java.util.List;

/** Collects invoice lines and totals them. */
public class Invoice {
    private final List<Long> cents = new ArrayList<>();

    public Invoice() {
    }

    /** Adds a line amount in cents. */
    public void add(long amount) {
        if (amount < 0) {
            throw new IllegalArgumentException("negative amount");
        }
        cents.add(amount);
    }

    public long total() {
        long sum = 0;
        for (long c : cents) {
            sum += c;
        }
        return sum;
    }

    interface Formatter {
        String format(long cents);
    }

    enum Currency { EUR, USD }
}
