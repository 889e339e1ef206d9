import React, { useState } from "react";

interface CounterProps {
  start: number;
  label: string;
}

export function Counter({ start, label }: CounterProps) {
  const [count, setCount] = useState(start);
  return (
    <div className="counter">
      <span>{label}</span>
      <button onClick={() => setCount(count + 1)}>{count}</button>
    </div>
  );
}

export const Badge = ({ text }: { text: string }) => {
  return <span className="badge">{text}</span>;
};

export default Counter;
