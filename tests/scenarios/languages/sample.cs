using System;
using System.Collections.Generic;

namespace Shop.Orders
{
    public interface IOrderStore
    {
        void Save(Order order);
    }

    public class Order
    {
        public int Id { get; set; }
        private readonly List<string> _lines = new List<string>();

        public void AddLine(string line)
        {
            if (string.IsNullOrEmpty(line))
            {
                throw new ArgumentException("empty line");
            }
            _lines.Add(line);
        }

        public int Count() => _lines.Count;
    }

    public enum Status { Open, Closed }

    public struct Money
    {
        public decimal Amount;
    }
}
